package attachments

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/engage-email/engage/followed"
)

func TestSanitizeName(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{in: "Q3 offer.pdf", want: "Q3 offer.pdf"},
		{in: "  spaced\tout  .docx ", want: "spaced out .docx"},
		{in: "bell\a\x00and\u202eltr.txt", want: "bellandltr.txt"},
		{in: `what?<is>"this"|*:.pdf`, want: "what__is__this____.pdf"},
		{in: "CON.txt", want: "_CON.txt"},
		{in: "~$lock.docx", want: "_~$lock.docx"},
		{in: "trailing dots...", want: "trailing dots"},
		{in: "bad\xffutf8.txt", want: "badutf8.txt"},
		{in: strings.Repeat("a", 300) + ".pdf", want: strings.Repeat("a", 196) + ".pdf"},
		{in: "../../x", err: "path separator"},
		{in: `..\evil.exe`, err: "path separator"},
		{in: "..", err: "names a folder"},
		{in: " . ", err: "names a folder"},
		{in: "\x01\x02", err: "nothing left"},
		{in: "", err: "nothing left"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := SanitizeName(tc.in)
			if tc.err != "" {
				if !errors.Is(err, followed.ErrBadInput) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("SanitizeName(%q) = %q, %v; want a bad-input error containing %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("SanitizeName(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func FuzzSanitizeName(f *testing.F) {
	for _, s := range []string{"a.pdf", "../../x", "CON", "\u202e", "a\x00b", strings.Repeat("é", 250) + ".txt", "x.", " "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := SanitizeName(in)
		if err != nil {
			if !errors.Is(err, followed.ErrBadInput) {
				t.Fatalf("SanitizeName(%q): error %v is not bad input", in, err)
			}
			return
		}
		if out == "" || !utf8.ValidString(out) || strings.ContainsAny(out, `/\"*:<>?|`) || out == "." || out == ".." {
			t.Fatalf("SanitizeName(%q) = %q: unsafe", in, out)
		}
		if n := utf8.RuneCountInString(out); n > maxNameRunes {
			t.Fatalf("SanitizeName(%q) = %d runes, over %d", in, n, maxNameRunes)
		}
		for _, r := range out {
			if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
				t.Fatalf("SanitizeName(%q) = %q keeps %U", in, out, r)
			}
		}
		if again, err := SanitizeName(out); err != nil || again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", in, out, again, err)
		}
	})
}

func TestSniff(t *testing.T) {
	tests := map[string]struct {
		head []byte
		want string
	}{
		"pdf":        {[]byte("%PDF-1.7\n"), "application/pdf"},
		"png":        {[]byte("\x89PNG\r\n\x1a\n0000"), "image/png"},
		"zip (docx)": {[]byte("PK\x03\x04rest"), "application/zip"},
		"html":       {[]byte("<html><script>"), "text/html; charset=utf-8"},
		"binary":     {[]byte{0, 1, 2, 3}, "application/octet-stream"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Sniff(tc.head); got != tc.want {
				t.Fatalf("Sniff = %q, want %q", got, tc.want)
			}
		})
	}
}
