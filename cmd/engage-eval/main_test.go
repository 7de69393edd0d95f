package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

func TestReportGolden(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"small", []string{"-seed", "3", "-weeks", "4", "-recipients", "120"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := run(context.Background(), tc.args, &out); err != nil {
				t.Fatalf("run: %v", err)
			}
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden file (run with -update to create it): %v", err)
			}
			if out.String() != string(want) {
				t.Errorf("report differs from %s (run with -update if intended):\n%s", path, out.String())
			}
		})
	}
}

func TestBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"too few weeks", []string{"-weeks", "1"}, "weeks must be"},
		{"too many recipients", []string{"-recipients", "999999"}, "weeks must be"},
		{"unknown flag", []string{"-nope"}, "parse flags"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), tc.args, &out)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("run(%v) error = %v, want it to mention %q", tc.args, err, tc.want)
			}
		})
	}
}

func TestStoreIgnoresMachineOpens(t *testing.T) {
	w, err := newWorld(5, 2, 20)
	if err != nil {
		t.Fatal(err)
	}
	p := &w.pop.people[0]
	delivered := epoch.Add(30 * time.Hour)
	tests := []struct {
		name         string
		countMachine bool
		low, high    float64
	}{
		{"machine opens are left out: two later human reads", false, 1.98, 2},
		{"the ablation takes the proxy's open, credited as at delivery", true, 1.25, 1.3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := newMemStore(w.pop, tc.countMachine)
			st.deliver(p, 1, delivered)
			st.deliver(p, 2, delivered)
			st.engage(p, 1, delivered, delivered.Add(prefetchDelay), true) // privacy proxy
			st.engage(p, 1, delivered, delivered.Add(5*time.Hour), false)  // the person, later
			st.engage(p, 2, delivered, delivered.Add(6*time.Hour), false)  // another message
			st.engage(p, 2, delivered, delivered.Add(7*time.Hour), false)  // not its first engagement
			sent, engaged := st.recipients[p.addr].Totals()
			if sent != 2 {
				t.Errorf("sent = %v, want 2", sent)
			}
			if engaged < tc.low || engaged > tc.high {
				t.Errorf("credited engagements = %v, want in [%v, %v]", engaged, tc.low, tc.high)
			}
		})
	}
}
