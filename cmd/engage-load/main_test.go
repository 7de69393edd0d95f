package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary stand in for the tool when startBareProcess runs it as the bare handler.
func TestMain(m *testing.M) {
	if os.Getenv(serveBareEnv) == "1" {
		if err := serveBare(context.Background(), os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
		check   func(o options) bool
	}{
		{"defaults", nil, "", func(o options) bool {
			return o.concurrency == 64 && o.duration == 10*time.Second && o.kind == "both" && o.addr == "" && o.slice == time.Second && o.runs == 1
		}},
		{"all set", []string{"-concurrency", "8", "-duration", "2s", "-kind", "click", "-addr", "127.0.0.1:8080", "-messages", "5"}, "",
			func(o options) bool {
				return o.concurrency == 8 && o.duration == 2*time.Second && o.kind == "click" && o.addr == "127.0.0.1:8080" && o.messages == 5
			}},
		{"bad kind", []string{"-kind", "open"}, "-kind", nil},
		{"zero concurrency", []string{"-concurrency", "0"}, "-concurrency", nil},
		{"endless", []string{"-duration", "1h"}, "-duration", nil},
		{"not loopback", []string{"-addr", "192.0.2.10:8080"}, "loopback addresses only", nil},
		{"no port", []string{"-addr", "localhost"}, "want host:port", nil},
		{"tiny slice", []string{"-slice", "1ms"}, "-slice", nil},
		{"no runs", []string{"-runs", "0"}, "-runs", nil},
		{"stray argument", []string{"extra"}, "unexpected arguments", nil},
		{"binary and address", []string{"-bin", "engage", "-addr", "127.0.0.1:8080"}, "give one", nil},
		{"no such binary", []string{"-bin", "no-such-engage-binary"}, "not a file", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseFlags(tt.args, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(o) {
				t.Fatalf("options %+v", o)
			}
		})
	}
}

// TestRunInProcess runs the tool end to end, briefly and twice, against an in-process Engage: the table
// has a row per target, the stored-versus-acknowledged check passes and the summary follows.
func TestRunInProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("drives load for about a second; skipped with -short")
	}
	var out bytes.Buffer
	allocs := filepath.Join(t.TempDir(), "allocs.prof")
	err := run(context.Background(), []string{"-concurrency", "4", "-duration", "300ms", "-slice", "150ms", "-messages", "3",
		"-runs", "2", "-memprofile", allocs}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	// The allocation profile names the tracking path's functions (pprof gzips it; names are in its
	// string table).
	if f, err := os.Open(allocs); err != nil {
		t.Error(err)
	} else {
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("allocation profile: %v", err)
		}
		prof, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("allocation profile: %v", err)
		}
		if !bytes.Contains(prof, []byte("engage/followed.(*Recorder)")) {
			t.Errorf("allocation profile (%d bytes) does not name the recorder", len(prof))
		}
	}
	for _, want := range []string{"both in this process", "bare pixel", "engage pixel", "bare click", "engage click", "ratio to bare",
		"OK, every acknowledged hit stored once", "run 2 of 2", "over 2 runs"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestBareProcess runs the bare handler in a process of its own: it answers both kinds as the
// in-process one does, and once stopped its process is gone and its port closed.
func TestBareProcess(t *testing.T) {
	b, err := startBareProcess(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			b.stop()
		}
	}()
	if !b.own {
		t.Error("a bare handler in a process of its own says it is not")
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tt := range []struct {
		kind   string
		status int
		header string
		want   string
	}{{"pixel", http.StatusOK, "Content-Type", "image/gif"}, {"click", http.StatusFound, "Location", "https://example.com/offer"}} {
		t.Run(tt.kind, func(t *testing.T) {
			res, err := client.Get(b.urls(tt.kind)[0])
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != tt.status || res.Header.Get(tt.header) != tt.want {
				t.Fatalf("%d %s %q, want %d %q", res.StatusCode, tt.header, res.Header.Get(tt.header), tt.status, tt.want)
			}
		})
	}
	b.stop()
	stopped = true
	if conn, err := net.DialTimeout("tcp", b.addr, time.Second); err == nil {
		conn.Close()
		t.Fatalf("%s still accepts connections after stop", b.addr)
	}
}

// TestRunBinary runs the tool against a freshly built cmd/engage: Engage as deployed, measured against
// a bare handler in a process of its own, its recorder's counts read from its metrics, its own CPU
// profile of the run written beside the tool's, and every acknowledged hit stored.
func TestRunBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cmd/engage and drives load for about a second; skipped with -short")
	}
	dir := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "engage"), "../engage").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Chdir(dir) // as the README has it: -bin engage, the file here
	var out bytes.Buffer
	err := run(context.Background(), []string{"-bin", "engage", "-concurrency", "4", "-duration", "300ms", "-slice", "150ms",
		"-messages", "3", "-cpuprofile", "load.prof"}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	// The binary's own profile of the run, gzipped as pprof writes it.
	if prof, err := os.ReadFile("load.prof.engage-1"); err != nil || len(prof) < 2 || prof[0] != 0x1f || prof[1] != 0x8b {
		t.Errorf("engage's profile: %d bytes, err %v\n%s", len(prof), err, out.String())
	}
	wants := []string{"each in a process of its own", "engage pixel", "engage click",
		" per commit), 0 spooled, 0 replayed, 0 failed", "OK, every acknowledged hit stored once"}
	if runtime.GOOS == "linux" { // CPU times come from /proc
		wants = append(wants, "CPU per hit, each process's own time (the load's not counted): pixel bare ")
	}
	for _, want := range wants {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		name string
		xs   []float64
		want float64
	}{
		{"none", nil, 0},
		{"one", []float64{0.5}, 0.5},
		{"odd, unsorted", []float64{0.53, 0.48, 0.51}, 0.51},
		{"even", []float64{0.52, 0.48, 0.50, 0.54}, 0.51},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := median(tt.xs); got < tt.want-1e-9 || got > tt.want+1e-9 {
				t.Errorf("median(%v) = %v, want %v", tt.xs, got, tt.want)
			}
		})
	}
	if got := median([]time.Duration{3 * time.Millisecond, time.Millisecond}); got != 2*time.Millisecond {
		t.Errorf("median of 1ms and 3ms = %v, want 2ms", got)
	}
}

// TestPrintSummary: every run's ratio and p99 with their medians; the CPU ratio's column only when
// every run read the processes' CPU times (-bin on Linux), since a median over some runs would mislead.
func TestPrintSummary(t *testing.T) {
	run := func(ratio, cpu float64, p99 time.Duration) []result {
		return []result{{name: "bare pixel", latencies: []time.Duration{time.Millisecond}},
			{name: "engage pixel", latencies: []time.Duration{p99}, ratio: ratio, cpuRatio: cpu}}
	}
	tests := []struct {
		name       string
		runs       [][]result
		want, lack []string
	}{
		{"without CPU times", [][]result{run(0.50, 0, 12*time.Millisecond), run(0.54, 0, 14*time.Millisecond)},
			[]string{"over 2 runs", "engage pixel  0.50 0.54", "0.52", "12.00ms 14.00ms", "13.00ms"},
			[]string{"CPU ratio", "bare pixel"}},
		{"with CPU times", [][]result{run(0.50, 0.31, 12*time.Millisecond), run(0.54, 0.33, 14*time.Millisecond),
			run(0.52, 0.35, 16*time.Millisecond)},
			[]string{"over 3 runs", "CPU ratio", "0.31 0.33 0.35", "0.33"}, nil},
		{"CPU times in some runs only", [][]result{run(0.50, 0.31, 12*time.Millisecond), run(0.54, 0, 14*time.Millisecond)},
			[]string{"0.50 0.54"}, []string{"CPU ratio"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			printSummary(&out, tt.runs)
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("summary lacks %q:\n%s", w, out.String())
				}
			}
			for _, l := range tt.lack {
				if strings.Contains(out.String(), l) {
					t.Errorf("summary has %q:\n%s", l, out.String())
				}
			}
		})
	}
}

// TestProfilePathsFailFirst: a profile that cannot be written is an error before any load is driven,
// not after a whole measurement.
func TestProfilePathsFailFirst(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-dir", "out.prof")
	for _, flag := range []string{"-cpuprofile", "-memprofile"} {
		t.Run(flag, func(t *testing.T) {
			var out bytes.Buffer
			start := time.Now()
			err := run(context.Background(), []string{flag, missing, "-duration", "10s"}, &out)
			if err == nil || !strings.Contains(err.Error(), "profile") {
				t.Fatalf("err %v, want one about the profile", err)
			}
			if strings.Contains(out.String(), "req/s") || time.Since(start) > 5*time.Second {
				t.Errorf("drove load before refusing the path (%s):\n%s", time.Since(start), out.String())
			}
		})
	}
}
