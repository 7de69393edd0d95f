package followed

import (
	"html"
	"strings"
)

// TextToHTML packs a plain-text message as a minimal HTML document so it can carry the pixel and
// tracked links: text is escaped, line breaks become <br>, runs of spaces survive, and bare http(s)
// URLs become links (which Rewrite then tracks).
func TextToHTML(text string) string {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	text = strings.ReplaceAll(text, "\r", "\n")
	text = strings.TrimRight(text, "\n") // a final line break would only add an empty line
	var b strings.Builder
	b.Grow(len(text) + len(text)/8 + 128)
	b.WriteString("<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n</head>\n<body>\n<div style=\"font-family:sans-serif\">\n")
	for i, line := range strings.Split(text, "\n") {
		if i > 0 {
			b.WriteString("<br>\n")
		}
		textLine(&b, line)
	}
	b.WriteString("\n</div>\n</body>\n</html>\n")
	return b.String()
}

// textLine writes one line, linking the URLs in it.
func textLine(b *strings.Builder, line string) {
	lineStart := true
	for line != "" {
		start := textURLStart(line)
		if start < 0 {
			textRun(b, line, lineStart)
			return
		}
		textRun(b, line[:start], lineStart)
		lineStart = false
		end := start + textURLLen(line[start:])
		url := line[start:end]
		b.WriteString(`<a href="`)
		b.WriteString(html.EscapeString(url))
		b.WriteString(`">`)
		b.WriteString(html.EscapeString(url))
		b.WriteString(`</a>`)
		line = line[end:]
	}
}

// textRun escapes text and keeps the spaces HTML would collapse: a space at the start of a line or next
// to another space becomes a no-break space, and a tab four of them.
func textRun(b *strings.Builder, s string, lineStart bool) {
	s = html.EscapeString(s)
	prevSpace := lineStart
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' && (prevSpace || i+1 < len(s) && s[i+1] == ' '):
			b.WriteString("&nbsp;")
		case c == '\t':
			b.WriteString("&nbsp;&nbsp;&nbsp;&nbsp;")
		default:
			b.WriteByte(c)
		}
		prevSpace = c == ' ' || c == '\t'
	}
}

// textURLStart finds the next "http://" or "https://" (any case) that starts a word and has more after it.
func textURLStart(s string) int {
	for i := 0; i+len("http://") < len(s); i++ {
		if i > 0 && textWordByte(s[i-1]) {
			continue
		}
		scheme := 0
		switch {
		case strings.EqualFold(s[i:i+len("http://")], "http://"):
			scheme = len("http://")
		case i+len("https://") < len(s) && strings.EqualFold(s[i:i+len("https://")], "https://"):
			scheme = len("https://")
		default:
			continue
		}
		if textURLLen(s[i:]) > scheme {
			return i
		}
	}
	return -1
}

// textURLLen measures a URL up to the first space or character that cannot end one in prose
// (a trailing full stop, comma, closing bracket or quote belongs to the sentence).
func textURLLen(s string) int {
	n := 0
	for n < len(s) {
		c := s[n]
		if c <= ' ' || c == '<' || c == '>' || c == '"' || c == 0x7f {
			break
		}
		n++
	}
	for n > 0 && strings.IndexByte(".,;:!?)]}'", s[n-1]) >= 0 {
		n--
	}
	return n
}

func textWordByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_'
}
