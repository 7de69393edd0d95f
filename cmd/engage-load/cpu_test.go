package main

import (
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// Fields 14 and 15 (utime, stime) are 250 and 50 ticks in the good lines.
	rest := " S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 8 0 100\n"
	for _, tt := range []struct {
		name, stat string
		want       time.Duration
		err        string
	}{
		{"plain name", "42 (engage)" + rest, 3 * time.Second, ""},
		{"name with spaces and parentheses", "42 (a (b) c)" + rest, 3 * time.Second, ""},
		{"no name", "42 engage S 1 2", 0, "not a stat line"},
		{"cut short", "42 (engage) S 1 2 3", 0, "too few fields"},
		{"not a number", "42 (engage) S 1 2 3 4 5 6 7 8 9 10 x 50 0", 0, "not a count of ticks"},
		{"negative", "42 (engage) S 1 2 3 4 5 6 7 8 9 10 -1 50 0", 0, "not a count of ticks"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tt.stat))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want one mentioning %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %s, %v; want %s", got, err, tt.want)
			}
		})
	}
}

// sink keeps the busy loop from being optimised away.
var sink int

// TestProcessCPU reads this process's CPU time, which grows while it works, and refuses a pid that
// is not a process.
func TestProcessCPU(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	before, err := processCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Work until the clock ticks the count on (it counts in hundredths), however busy the machine.
	for start := time.Now(); ; {
		after, err := processCPU(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if after >= before+20*time.Millisecond {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("10 s of work moved CPU time from %s to %s", before, after)
		}
		for i := 0; i < 1e6; i++ {
			sink += i
		}
	}
	if _, err := processCPU(1 << 30); err == nil {
		t.Error("a pid that is no process has a CPU time")
	}
}
