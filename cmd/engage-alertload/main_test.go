package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseVmRSS(t *testing.T) {
	tests := []struct {
		name, in string
		want     int64
		ok       bool
	}{
		{"status file", "Name:\tengage\nVmPeak:\t  900 kB\nVmRSS:\t   123456 kB\nThreads:\t9\n", 123456 * 1024, true},
		{"no line", "Name:\tengage\n", 0, false},
		{"odd unit", "VmRSS:\t12 MB\n", 0, false},
		{"not a number", "VmRSS:\tlots kB\n", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseVmRSS(strings.NewReader(tt.in))
			if (err == nil) != tt.ok || got != tt.want {
				t.Fatalf("got %d, %v; want %d, ok=%v", got, err, tt.want, tt.ok)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 200; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	tests := []struct {
		p    int
		want time.Duration
	}{{50, 100 * time.Millisecond}, {99, 198 * time.Millisecond}, {100, 200 * time.Millisecond}, {0, time.Millisecond}}
	for _, tt := range tests {
		t.Run("", func(t *testing.T) {
			if got := percentile(d, tt.p); got != tt.want {
				t.Fatalf("p%d = %s, want %s", tt.p, got, tt.want)
			}
		})
	}
	if percentile(nil, 50) != 0 {
		t.Fatal("percentile of nothing is not zero")
	}
}

func TestFlags(t *testing.T) {
	tests := []struct {
		args []string
		ok   bool
	}{
		{[]string{"-bin", "engage"}, true},
		{[]string{}, false},
		{[]string{"-bin", "engage", "-instances", "3"}, false},
		{[]string{"-bin", "engage", "-idle", "-1"}, false},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			if _, err := parseFlags(tt.args); (err == nil) != tt.ok {
				t.Fatalf("err %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestParseGoroutineTotal(t *testing.T) {
	tests := []struct {
		name, in string
		want     int
		ok       bool
	}{
		{"profile", "goroutine profile: total 20017\n10000 @ 0x48f10e 0x4505f7\n", 20017, true},
		{"empty", "", 0, false},
		{"other text", "404 page not found\n", 0, false},
		{"not a number", "goroutine profile: total many\n", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseGoroutineTotal(strings.NewReader(tt.in))
			if (err == nil) != tt.ok || got != tt.want {
				t.Fatalf("got %d, %v; want %d, ok=%v", got, err, tt.want, tt.ok)
			}
		})
	}
}
