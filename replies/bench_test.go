package replies

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkCorpus parses and classifies every message in testdata, as the Graph subscription will.
func BenchmarkCorpus(b *testing.B) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.eml"))
	if err != nil {
		b.Fatalf("list corpus: %v", err)
	}
	var raws [][]byte
	size := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			b.Fatalf("read %s: %v", f, err)
		}
		raws = append(raws, raw)
		size += len(raw)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		for _, raw := range raws {
			in, err := ParseMIME(raw)
			if err != nil {
				b.Fatalf("ParseMIME: %v", err)
			}
			Classify(in)
			ReferencedIDs(in)
		}
	}
}

// BenchmarkHostile measures messages near the 25 MiB limit shaped to provoke quadratic work: endless
// folded headers, repeated recipient-list intros, tag-stacked subjects, deep comments in References.
func BenchmarkHostile(b *testing.B) {
	const size = MaxMessageSize - 1024
	cases := []struct {
		name string
		raw  string
	}{
		{"folded header", "X-Long: a\r\n" + strings.Repeat(" x\r\n", size/4) + "\r\nbody"},
		{"recipient intros", "From: postmaster@x.example\r\nSubject: Undeliverable: x\r\n\r\n" +
			strings.Repeat("Delivery has failed to these recipients or groups:\r\n", size/52)},
		{"tagged subject", "Subject: " + strings.Repeat("[EXTERNAL]", size/10) + "\r\n\r\n"},
		{"references", "References: " + strings.Repeat("((<a@b>)", size/8) + "\r\n\r\n"},
		{"status codes", "From: mailer-daemon@x.example\r\n\r\n" + strings.Repeat("5.1.1.1 ", size/8)},
		{"html", "Content-Type: text/html\r\n\r\n" + strings.Repeat("<li><b>x</b>&amp;", size/17)},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			raw := []byte(c.raw)
			if len(raw) > MaxMessageSize {
				b.Fatalf("case is %d bytes, over the limit", len(raw))
			}
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				in, err := ParseMIME(raw)
				if err != nil {
					b.Fatalf("ParseMIME: %v", err)
				}
				Classify(in)
				ReferencedIDs(in)
			}
		})
	}
}
