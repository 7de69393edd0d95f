package replies

import (
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// HTMLToText turns an HTML body into plain text good enough to read bounce and reply wording: text and
// entities are kept, script, style and head content dropped, block elements and <br> become line breaks,
// and runs of blank lines shrink to one. It never fails; broken markup yields what text it has.
func HTMLToText(src string) string {
	z := html.NewTokenizer(strings.NewReader(src))
	var b strings.Builder
	skip := 0 // depth inside elements whose text is not shown
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return tidyText(b.String())
		case html.TextToken:
			if skip == 0 {
				b.WriteString(collapseSpaces(string(z.Text())))
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			a := atom.Lookup(name)
			if hidden(a) {
				if tt == html.StartTagToken {
					skip++
				}
				continue
			}
			if a == atom.Br || isBlock(a) {
				b.WriteByte('\n')
			}
			if a == atom.Li {
				b.WriteString("- ")
			}
			if a == atom.Td || a == atom.Th {
				b.WriteByte(' ')
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			a := atom.Lookup(name)
			if hidden(a) {
				if skip > 0 {
					skip--
				}
				continue
			}
			if isBlock(a) {
				b.WriteByte('\n')
			}
		}
	}
}

// hidden reports elements whose content is not part of the readable text. They are all raw-text elements,
// so an unclosed one cannot hide more than the tokenizer already treats as its content.
func hidden(a atom.Atom) bool {
	switch a {
	case atom.Script, atom.Style, atom.Title:
		return true
	}
	return false
}

// isBlock reports elements that start a new line when rendered.
func isBlock(a atom.Atom) bool {
	switch a {
	case atom.P, atom.Div, atom.Tr, atom.Table, atom.Li, atom.Ul, atom.Ol, atom.H1, atom.H2, atom.H3,
		atom.H4, atom.H5, atom.H6, atom.Blockquote, atom.Pre, atom.Hr, atom.Section, atom.Article,
		atom.Header, atom.Footer, atom.Address, atom.Dl, atom.Dt, atom.Dd, atom.Body, atom.Center:
		return true
	}
	return false
}

// collapseSpaces turns each run of whitespace (including newlines in the source) into one space, as a
// browser does outside <pre>.
func collapseSpaces(s string) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		if isSpace(r) && r != '\u00a0' && r != '\u202f' {
			space = true
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	if space {
		b.WriteByte(' ')
	}
	return b.String()
}

// tidyText trims each line and keeps at most one blank line between paragraphs.
func tidyText(s string) string {
	lines := strings.Split(s, "\n")
	var out []string
	blank := true
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" {
			if !blank {
				out = append(out, "")
			}
			blank = true
			continue
		}
		out = append(out, l)
		blank = false
	}
	return strings.TrimSpace(strings.Join(out, "\n"))
}
