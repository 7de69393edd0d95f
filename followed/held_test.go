package followed

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestHeldFile: what the file holds comes back whole, a torn line (a crash in an append) costs only
// itself, and an append after a torn line is not swallowed by it.
func TestHeldFile(t *testing.T) {
	a := Relabel{EventID: "e1", Reason: "SECURITY_SCANNER", Rule: "honeypot-visitor"}
	b := Relabel{EventID: "e2", Reason: "PREFETCH"}
	c := Relabel{EventID: "e3", Reason: "APPLE_PRIVACY_PROXY", Rule: "apple-proxy"}
	tests := []struct {
		name     string
		existing string // the file before the appends; "-" for none
		add      [][]Relabel
		replace  []Relabel // applied after the appends when not nil
		want     []Relabel
		wantBad  int
	}{
		{name: "no file", existing: "-", want: nil},
		{name: "appends", existing: "-", add: [][]Relabel{{a}, {b, c}}, want: []Relabel{a, b, c}},
		{name: "torn tail, then an append", existing: `{"id":"e1","reason":"SECURITY_SCANNER","rule":"honeypot-visitor"}` + "\n" + `{"id":"e9","rea`,
			add: [][]Relabel{{b}}, want: []Relabel{a, b}, wantBad: 1},
		{name: "not a relabel", existing: `{"id":"","reason":"PREFETCH"}` + "\n" + `[1,2]` + "\n" + `{"id":"e2","reason":"PREFETCH"}`,
			want: []Relabel{b}, wantBad: 2},
		{name: "replaced by what is left", existing: "-", add: [][]Relabel{{a, b}, {c}}, replace: []Relabel{c}, want: []Relabel{c}},
		{name: "nothing left removes it", existing: "-", add: [][]Relabel{{a}}, replace: []Relabel{}, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := heldFile{path: filepath.Join(t.TempDir(), "relabels.held")}
			if tt.existing != "-" {
				if err := os.WriteFile(h.path, []byte(tt.existing), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			for _, rs := range tt.add {
				if err := h.add(rs); err != nil {
					t.Fatal(err)
				}
			}
			if tt.replace != nil {
				if err := h.replace(tt.replace); err != nil {
					t.Fatal(err)
				}
				if len(tt.replace) == 0 {
					if _, err := os.Stat(h.path); !os.IsNotExist(err) {
						t.Fatalf("the file is still there (%v)", err)
					}
				}
			}
			got, bad, err := h.load()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) || bad != tt.wantBad {
				t.Fatalf("load: %+v, %d bad; want %+v, %d bad", got, bad, tt.want, tt.wantBad)
			}
			left, _ := filepath.Glob(h.path + ".*")
			if len(left) > 0 {
				t.Fatalf("temporary files left: %v", left)
			}
		})
	}
}
