package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

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
	err := run(context.Background(), []string{"-concurrency", "4", "-duration", "300ms", "-slice", "150ms", "-messages", "3",
		"-runs", "2"}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"bare pixel", "engage pixel", "bare click", "engage click", "ratio to bare",
		"OK, every acknowledged hit stored once", "run 2 of 2", "over 2 runs"} {
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
