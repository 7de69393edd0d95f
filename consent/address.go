package consent

import (
	"path"
	"strings"
)

// ReplaceAddress replaces, in any case, each occurrence of addr in text that stands alone with with,
// and says how many it replaced. An occurrence inside a longer address is another person's and is
// left: ann@x.com in joann@x.com or in ann@x.com.au. Erasure blanks and hashes an address with it, so
// that forgetting one person leaves everyone else's records as they were.
func ReplaceAddress(text, addr, with string) (string, int) {
	if addr == "" {
		return text, 0
	}
	lower, want := asciiLower(text), asciiLower(addr)
	var b strings.Builder
	n, done := 0, 0
	for from := 0; ; {
		i := strings.Index(lower[from:], want)
		if i < 0 {
			break
		}
		start, end := from+i, from+i+len(want)
		if !alone(lower, start, end) {
			from = start + 1
			continue
		}
		b.WriteString(text[done:start])
		b.WriteString(with)
		done, from = end, end
		n++
	}
	if n == 0 {
		return text, 0
	}
	b.WriteString(text[done:])
	return b.String(), n
}

// compressed are the extensions of a compressor, which follow another ("offer.tar.gz").
var compressed = map[string]bool{".gz": true, ".bz2": true, ".xz": true, ".zst": true, ".z": true, ".lz": true}

// ReplaceAddressInFileName is ReplaceAddress for a file name, whose extensions would otherwise read as
// more of the address's domain: in "Quote for ann@x.com.pdf" (or ".tar.gz") the address stands alone
// before them. The name is read with its extension set aside (two, after a compressor's), and the reading that finds the
// address most often wins ("Quote for ann@x.com" has none: ".com" is the address's).
func ReplaceAddressInFileName(name, addr, with string) (string, int) {
	best, most := ReplaceAddress(name, addr, with)
	base, exts := name, ""
	for i := range 2 {
		ext := path.Ext(base)
		if len(ext) < 2 || len(ext) > 9 || strings.ContainsAny(ext, "@/ ") || (i == 1 && !compressed[strings.ToLower(exts)]) {
			break // a second extension only after a compressor's: "ann@x.com.au.pdf" is someone else's
		}
		base, exts = base[:len(base)-len(ext)], ext+exts
		if out, n := ReplaceAddress(base, addr, with); n > most {
			best, most = out+exts, n
		}
	}
	return best, most
}

// alone says whether text[start:end] is not part of a longer address: no local-part character just
// before it, and no domain character (or a dot and then one) just after.
func alone(text string, start, end int) bool {
	if start > 0 && (alnum(text[start-1]) || strings.IndexByte("._%+-", text[start-1]) >= 0) {
		return false
	}
	if end < len(text) {
		c := text[end]
		if alnum(c) || c == '-' || c == '@' || (c == '.' && end+1 < len(text) && alnum(text[end+1])) {
			return false
		}
	}
	return true
}

func alnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' }

// asciiLower lowers ASCII letters alone, so that byte offsets in the result are the text's.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
