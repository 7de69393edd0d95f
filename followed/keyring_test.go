package followed

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestNewKeyRing(t *testing.T) {
	secret := bytes.Repeat([]byte{7}, 32)
	tests := []struct {
		name string
		keys []Key
		ok   bool
	}{
		{"one key", []Key{{"k1", secret}}, true},
		{"two keys", []Key{{"new", secret}, {"old_2025-12", secret}}, true},
		{"sixteen character id", []Key{{strings.Repeat("a", 16), secret}}, true},
		{"no keys", nil, false},
		{"duplicate ids", []Key{{"k1", secret}, {"k1", bytes.Repeat([]byte{8}, 32)}}, false},
		{"short secret", []Key{{"k1", secret[:31]}}, false},
		{"empty id", []Key{{"", secret}}, false},
		{"long id", []Key{{strings.Repeat("a", 17), secret}}, false},
		{"id with a colon", []Key{{"k:1", secret}}, false},
		{"id with a comma", []Key{{"k,1", secret}}, false},
		{"id with unicode", []Key{{"clé", secret}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewKeyRing(tc.keys...)
			if (err == nil) != tc.ok {
				t.Fatalf("NewKeyRing = %v, %v; want ok=%v", r, err, tc.ok)
			}
		})
	}
}

func TestKeyRingCopiesSecrets(t *testing.T) {
	secret := bytes.Repeat([]byte{7}, 32)
	r := testRing(t, Key{"k1", secret})
	tok := Token{Kind: TokenOpen, MessageID: "m", Recipient: -1}
	s, err := r.Sign(tok)
	if err != nil {
		t.Fatal(err)
	}
	secret[0] = 8 // the caller reuses its buffer
	if _, err := r.Parse(s); err != nil {
		t.Fatalf("ring changed with the caller's slice: %v", err)
	}
}

func TestParseKeyRing(t *testing.T) {
	s1 := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	s2 := base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{2}, 48)) // padded
	tests := []struct {
		name string
		spec string
		ids  string // the ring's String, "" when parsing must fail
	}{
		{"one key", "a:" + s1, "KeyRing(a)"},
		{"two keys, first signs", "new:" + s2 + ",old:" + s1, "KeyRing(new,old)"},
		{"spaces, newlines and trailing comma", " new : " + s2 + " ,\nold:" + s1 + ",\n", "KeyRing(new,old)"},
		{"empty", "", ""},
		{"only separators", " , \n", ""},
		{"no colon", "a" + s1, ""},
		{"standard alphabet", "a:" + strings.Repeat("+/", 22), ""},
		{"short secret", "a:" + base64.RawURLEncoding.EncodeToString(make([]byte, 16)), ""},
		{"duplicate", "a:" + s1 + ",a:" + s2, ""},
		{"bad id", "a b:" + s1, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseKeyRing(tc.spec)
			if tc.ids == "" {
				if err == nil {
					t.Fatalf("ParseKeyRing(%q) = %v, want an error", tc.spec, r)
				}
				if strings.Contains(err.Error(), s1[8:]) || strings.Contains(err.Error(), s2[8:]) {
					t.Fatalf("error leaks a secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseKeyRing(%q): %v", tc.spec, err)
			}
			if got := r.String(); got != tc.ids {
				t.Fatalf("ring = %s, want %s", got, tc.ids)
			}
			back, err := ParseKeyRing(r.spec())
			if err != nil || back.spec() != r.spec() {
				t.Fatalf("spec does not round trip: %v", err)
			}
		})
	}
}

func TestLoadOrCreateKeyRing(t *testing.T) {
	spec := "env:" + base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{3}, 32))
	t.Run("spec wins and touches no file", func(t *testing.T) {
		dir := t.TempDir()
		r, err := LoadOrCreateKeyRing(dir, spec)
		if err != nil || r.String() != "KeyRing(env)" {
			t.Fatalf("LoadOrCreateKeyRing = %v, %v", r, err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Fatalf("dir has %d entries, want none", len(entries))
		}
	})
	t.Run("bad spec fails", func(t *testing.T) {
		if _, err := LoadOrCreateKeyRing(t.TempDir(), "env:short"); err == nil {
			t.Fatal("want an error")
		}
	})
	t.Run("created once, then reloaded", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data") // does not exist yet
		first, err := LoadOrCreateKeyRing(dir, "")
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "tracking.key")
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Fatalf("key file mode %v, want 0600", perm)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 1 {
			t.Fatalf("dir has %d entries, want only the key file", len(entries))
		}
		tok := Token{Kind: TokenOpen, MessageID: "m", Recipient: -1}
		s, err := first.Sign(tok)
		if err != nil {
			t.Fatal(err)
		}
		second, err := LoadOrCreateKeyRing(dir, "")
		if err != nil {
			t.Fatal(err)
		}
		if got, err := second.Parse(s); err != nil || got != tok {
			t.Fatalf("reloaded ring does not verify the first one's token: %+v, %v", got, err)
		}
	})
	t.Run("file edited for rotation", func(t *testing.T) {
		dir := t.TempDir()
		old, err := LoadOrCreateKeyRing(dir, "")
		if err != nil {
			t.Fatal(err)
		}
		rotated := spec + "," + old.spec()
		if err := os.WriteFile(filepath.Join(dir, "tracking.key"), []byte(rotated+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		r, err := LoadOrCreateKeyRing(dir, "")
		if err != nil || !strings.HasPrefix(r.String(), "KeyRing(env,") {
			t.Fatalf("LoadOrCreateKeyRing = %v, %v", r, err)
		}
	})
	t.Run("corrupt file is an error, not a new key", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "tracking.key")
		if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreateKeyRing(dir, ""); err == nil {
			t.Fatal("want an error")
		}
		if b, _ := os.ReadFile(path); string(b) != "garbage" {
			t.Fatalf("corrupt file was overwritten: %q", b)
		}
	})
	t.Run("concurrent starts share one key", func(t *testing.T) {
		dir := t.TempDir()
		rings := make([]*KeyRing, 8)
		var wg sync.WaitGroup
		for i := range rings {
			wg.Go(func() {
				r, err := LoadOrCreateKeyRing(dir, "")
				if err != nil {
					t.Error(err)
				}
				rings[i] = r
			})
		}
		wg.Wait()
		for _, r := range rings[1:] {
			if r == nil || rings[0] == nil || r.spec() != rings[0].spec() {
				t.Fatal("processes starting together got different rings")
			}
		}
	})
}
