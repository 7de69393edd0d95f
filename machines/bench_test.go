package machines

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// BenchmarkLabel measures the single-hit path a pixel or redirect handler pays: static rules,
// timing, and the visitor window (the target is well under 5 µs/op).
func BenchmarkLabel(b *testing.B) {
	c := NewClassifier(DefaultRules(), nil)
	visitors := make([]string, 1024)
	for i := range visitors {
		visitors[i] = fmt.Sprintf("msg-%d|rcpt|ip|ua", i)
	}
	h := Hit{ID: "e", Kind: Open, Method: "GET", IP: netip.MustParseAddr("198.51.100.7"), UserAgent: chromeUA,
		SentAt: time.Now().Add(-time.Hour)}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.Visitor = visitors[i&1023]
		h.At = time.Time{}
		c.Label(h)
	}
}

// BenchmarkLabelParallel measures the same path under contention for the window's lock.
func BenchmarkLabelParallel(b *testing.B) {
	c := NewClassifier(DefaultRules(), nil)
	visitors := make([]string, 1024)
	for i := range visitors {
		visitors[i] = fmt.Sprintf("msg-%d|rcpt|ip|ua", i)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		h := Hit{ID: "e", Kind: Click, Method: "GET", IP: netip.MustParseAddr("198.51.100.7"), UserAgent: chromeUA,
			Link: "a", SentAt: time.Now().Add(-time.Hour)}
		i := 0
		for pb.Next() {
			i++
			h.Visitor = visitors[i&1023]
			h.At = time.Time{}
			c.Label(h)
		}
	})
}
