package attachments

import (
	"fmt"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/engage-email/engage/followed"
)

// maxNameRunes keeps a name, with the Engage/yyyy-mm folder, well inside OneDrive's 400-character path.
const maxNameRunes = 200

// reservedNames are device names Windows (and so OneDrive) refuses whatever the extension.
var reservedNames = map[string]bool{"CON": true, "PRN": true, "AUX": true, "NUL": true,
	"COM1": true, "COM2": true, "COM3": true, "COM4": true, "COM5": true, "COM6": true, "COM7": true, "COM8": true, "COM9": true,
	"LPT1": true, "LPT2": true, "LPT3": true, "LPT4": true, "LPT5": true, "LPT6": true, "LPT7": true, "LPT8": true, "LPT9": true}

// SanitizeName makes an uploaded file name safe to store and show: a name that tries to leave its
// folder (a path separator, "." or "..") is refused, control and format characters are dropped,
// characters OneDrive refuses become "_", and the name is trimmed to 200 characters keeping its extension.
func SanitizeName(name string) (string, error) {
	if strings.ContainsAny(name, `/\`) {
		return "", fmt.Errorf("%w: the file name %q contains a path separator", followed.ErrBadInput, clip(name))
	}
	name = strings.ToValidUTF8(name, "\uFFFD")
	var b strings.Builder
	for _, r := range name {
		switch {
		case unicode.IsSpace(r):
			b.WriteByte(' ')
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError:
			continue // invisible or undecodable: a trap for whoever reads the name
		case strings.ContainsRune(`"*:<>?|#%`, r):
			b.WriteByte('_')
		default:
			b.WriteRune(r)
		}
	}
	out := strings.Trim(b.String(), " .")
	if strings.Trim(name, " ") == "." || strings.Trim(name, " ") == ".." {
		return "", fmt.Errorf("%w: the file name %q names a folder, not a file", followed.ErrBadInput, clip(name))
	}
	if out == "" {
		return "", fmt.Errorf("%w: the file name %q has nothing left once unsafe characters are removed", followed.ErrBadInput, clip(name))
	}
	out = strings.Join(strings.Fields(out), " ")
	stem, ext := out, ""
	if i := strings.LastIndexByte(out, '.'); i > 0 && utf8.RuneCountInString(out[i:]) <= 16 {
		stem, ext = out[:i], out[i:]
	}
	if reservedNames[strings.ToUpper(strings.TrimSpace(stem))] || strings.HasPrefix(stem, "~$") {
		stem = "_" + stem
	}
	if n := maxNameRunes - utf8.RuneCountInString(ext); utf8.RuneCountInString(stem) > n {
		stem = strings.TrimRight(string([]rune(stem)[:n]), " .")
	}
	return stem + ext, nil
}

// clip bounds a hostile name quoted back in an error.
func clip(s string) string {
	if len(s) <= 80 {
		return s
	}
	return strings.ToValidUTF8(s[:80], "") + "…"
}

// sniffLen is how much of a file http.DetectContentType looks at.
const sniffLen = 512

// Sniff names the type of content from its first bytes (the WHATWG algorithm), whatever the
// uploader claimed.
func Sniff(head []byte) string { return http.DetectContentType(head) }
