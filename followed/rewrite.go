package followed

import (
	"fmt"
	"html"
	"net/url"
	"strings"
	"unicode"

	xhtml "golang.org/x/net/html"
)

// Rewriter turns an author's HTML into a tracked render: links become redirects and a pixel is added,
// while every byte it has no reason to change passes through as the author wrote it.
type Rewriter struct {
	Click    func(index int, url string) string // tracked URL for the index-th distinct link of the message; nil tracks no links
	Pixel    string                             // URL of the 1x1 tracking GIF; "" adds none
	Honeypot string                             // URL of an invisible link only machines follow; "" adds none
	IsOwn    func(url string) bool              // true for links already pointing at Engage (left alone)
}

// RewriteResult is a tracked render and what the message needs to remember about it.
type RewriteResult struct {
	HTML     string
	Links    []string // distinct tracked URLs (decoded, exact as the author meant), index = position
	Warnings []string // e.g. `link "http://a b" has spaces or control characters: left untracked`
}

// rewriteTrackOff is the attribute an author puts on a link to keep it untracked.
const rewriteTrackOff = "data-engage-track"

// Rewrite tracks the absolute http(s) links of a and area elements (and the href of VML shapes inside
// Outlook's conditional comments) and puts the honeypot and pixel just before </body>, or at the end
// when there is none. Broken HTML is rewritten as far as it can be, never dropped.
func (rw Rewriter) Rewrite(src string) RewriteResult {
	st := rewriteState{rw: rw, index: map[string]int{}, warned: map[string]bool{}}
	var out strings.Builder
	out.Grow(len(src) + len(src)/8 + 512)
	bodyEnd := -1
	st.tokens(&out, src, false, func(offset int) { bodyEnd = offset })

	tail := rw.trackingTail()
	res := RewriteResult{Links: st.links, Warnings: st.warnings}
	if tail == "" {
		res.HTML = out.String()
		return res
	}
	s := out.String()
	if bodyEnd < 0 {
		res.HTML = s + tail
	} else {
		res.HTML = s[:bodyEnd] + tail + s[bodyEnd:]
	}
	return res
}

// trackingTail is the honeypot and the pixel, in that order.
func (rw Rewriter) trackingTail() string {
	var b strings.Builder
	if rw.Honeypot != "" {
		// Hidden from people (display:none, mso-hide for Outlook), from screen readers (aria-hidden) and
		// from keyboard focus (tabindex); with no text there is nothing to read or click.
		b.WriteString(`<a href="`)
		b.WriteString(html.EscapeString(rw.Honeypot))
		b.WriteString(`" aria-hidden="true" tabindex="-1" style="display:none;visibility:hidden;mso-hide:all;` +
			`position:absolute;width:0;height:0;overflow:hidden;font-size:0;line-height:0"></a>`)
	}
	if rw.Pixel != "" {
		b.WriteString(`<img src="`)
		b.WriteString(html.EscapeString(rw.Pixel))
		b.WriteString(`" width="1" height="1" alt="" border="0" style="display:block;width:1px;height:1px;border:0">`)
	}
	return b.String()
}

// rewriteState is one render's memory: the links seen so far and the warnings given.
type rewriteState struct {
	rw       Rewriter
	index    map[string]int
	links    []string
	warnings []string
	warned   map[string]bool
}

// tokens copies src to out token by token, rewriting what it must. inComment is true for the inside of
// an Outlook conditional comment, where any element's href is a link (VML shapes carry them). bodyEnd
// is told the output offset of every </body> end tag, so the last one wins.
func (st *rewriteState) tokens(out *strings.Builder, src string, inComment bool, bodyEnd func(int)) {
	z := xhtml.NewTokenizer(strings.NewReader(src))
	off := 0
	for {
		tt := z.Next()
		// Raw's bytes partition the input, so the token's text is src at the running offset; TagName and
		// TagAttr below lower-case and unescape the tokenizer's buffer in place, never src.
		n := len(z.Raw())
		raw := src[off : off+n]
		off += n
		switch tt {
		case xhtml.ErrorToken:
			out.WriteString(raw)
			out.WriteString(src[off:]) // nothing, unless the tokenizer stopped early: keep it all the same
			return
		case xhtml.StartTagToken, xhtml.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			tag := string(name)
			if hasAttr && (inComment || tag == "a" || tag == "area") {
				out.WriteString(st.tag(z, raw))
				continue
			}
		case xhtml.EndTagToken:
			if name, _ := z.TagName(); !inComment && string(name) == "body" {
				bodyEnd(out.Len())
			}
		case xhtml.CommentToken:
			if !inComment {
				out.WriteString(st.comment(raw))
				continue
			}
		}
		out.WriteString(raw)
	}
}

// comment rewrites the links inside an Outlook conditional comment ("<!--[if mso]>...<![endif]-->"),
// which Outlook renders and every other client ignores; other comments pass through.
func (st *rewriteState) comment(raw string) string {
	if len(raw) < len("<!---->") || !strings.HasPrefix(raw, "<!--") || !strings.HasSuffix(raw, "-->") {
		return raw
	}
	inner := raw[len("<!--") : len(raw)-len("-->")]
	cond := strings.TrimLeft(inner, " \t\r\n\f")
	if len(cond) < 3 || !strings.EqualFold(cond[:3], "[if") {
		return raw
	}
	var b strings.Builder
	b.Grow(len(raw) + 64)
	b.WriteString("<!--")
	st.tokens(&b, inner, true, func(int) {})
	b.WriteString("-->")
	return b.String()
}

// tag rewrites the href of one start tag whose raw text is raw, or returns raw unchanged.
func (st *rewriteState) tag(z *xhtml.Tokenizer, raw string) string {
	type decoded struct{ key, val string }
	var attrs []decoded
	for more := true; more; {
		var k, v []byte
		k, v, more = z.TagAttr()
		attrs = append(attrs, decoded{string(k), string(v)})
	}
	spans := rewriteScanAttrs(raw)
	if len(spans) != len(attrs) {
		return raw // the scanner and the tokenizer disagree: never guess where a value is
	}
	href := -1
	for i, a := range attrs {
		if a.key != spans[i].key {
			return raw
		}
		if a.key == rewriteTrackOff && strings.EqualFold(strings.TrimSpace(a.val), "off") {
			return raw
		}
		if a.key == "href" && href < 0 {
			href = i
		}
	}
	if href < 0 || !spans[href].hasValue {
		return raw
	}
	tracked, ok := st.track(attrs[href].val)
	if !ok {
		return raw
	}
	sp := spans[href]
	val := html.EscapeString(tracked)
	if sp.quote == 0 && !rewriteUnquotedSafe(val) {
		val = `"` + val + `"`
	}
	return raw[:sp.valStart] + val + raw[sp.valEnd:]
}

// MaxTrackedURL is the longest link that is tracked: the target travels inside the signed token, and
// longer URLs would make links some mail clients and proxies truncate.
const MaxTrackedURL = 2048

// track decides whether a decoded href is tracked and returns its tracked URL.
func (st *rewriteState) track(href string) (string, bool) {
	if st.rw.Click == nil {
		return "", false
	}
	// Browsers strip the whitespace around a URL attribute, so the author meant the URL without it.
	u := strings.Trim(href, " \t\n\f\r")
	if !rewriteIsHTTP(u) {
		return "", false // mailto:, tel:, #anchors, relative links and other schemes stay as they are
	}
	if strings.IndexFunc(u, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		st.warn(fmt.Sprintf("link %q has spaces or control characters: left untracked", u))
		return "", false
	}
	if st.rw.IsOwn != nil && st.rw.IsOwn(u) {
		return "", false
	}
	if len(u) > MaxTrackedURL {
		st.warn(fmt.Sprintf("link %.60q... is longer than %d bytes: left untracked", u, MaxTrackedURL))
		return "", false
	}
	if p, err := url.Parse(u); err != nil || p.Host == "" {
		st.warn(fmt.Sprintf("link %q is not a valid URL: left untracked", u))
		return "", false
	}
	i, seen := st.index[u]
	if !seen {
		i = len(st.links)
		st.index[u] = i
		st.links = append(st.links, u)
	}
	return st.rw.Click(i, u), true
}

func (st *rewriteState) warn(w string) {
	if !st.warned[w] {
		st.warned[w] = true
		st.warnings = append(st.warnings, w)
	}
}

// rewriteIsHTTP reports an absolute http or https URL, in any letter case.
func rewriteIsHTTP(u string) bool {
	return len(u) > len("http://") && strings.EqualFold(u[:len("http://")], "http://") ||
		len(u) > len("https://") && strings.EqualFold(u[:len("https://")], "https://")
}

// rewriteUnquotedSafe reports whether an escaped value can stay unquoted, as the author wrote it.
func rewriteUnquotedSafe(v string) bool {
	return v != "" && !strings.ContainsAny(v, " \t\n\f\r\"'=<>`")
}

// rewriteAttrSpan is where one attribute's value sits in a raw start tag.
type rewriteAttrSpan struct {
	key              string // lower-cased, as the tokenizer reports it
	valStart, valEnd int    // the value, without its quotes
	quote            byte   // '"', '\'' or 0 for an unquoted value
	hasValue         bool   // an "=" was seen
}

// rewriteScanAttrs finds the attributes of a complete raw start tag the way golang.org/x/net/html's
// tokenizer reads them (same states, same duplicate rule: the first of a name wins), because the
// tokenizer gives values but not their offsets. Tag rewrites check both agree before touching anything.
func rewriteScanAttrs(raw string) []rewriteAttrSpan {
	isSpace := func(c byte) bool { return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f' }
	i := 2 // past "<" and the tag name's first letter
	for ; i < len(raw); i++ {
		if c := raw[i]; isSpace(c) {
			i++
			break
		} else if c == '/' || c == '>' {
			break
		}
	}
	skipSpace := func() {
		for i < len(raw) && isSpace(raw[i]) {
			i++
		}
	}
	var spans []rewriteAttrSpan
	seen := map[string]bool{}
	skipSpace()
	for i < len(raw) && raw[i] != '>' {
		// The attribute name: an "=" is part of it only as its first character.
		keyStart := i
		for i < len(raw) {
			c := raw[i]
			if c == '=' && i == keyStart {
				i++
				continue
			}
			if c == '=' || isSpace(c) || c == '/' || c == '>' {
				break
			}
			i++
		}
		sp := rewriteAttrSpan{key: raw[keyStart:i]}
		sp.valStart, sp.valEnd = i, i
		// The value, if an "=" follows.
		skipSpace()
		switch {
		case i >= len(raw):
		case raw[i] == '/':
			i++
		case raw[i] != '=':
		default:
			i++
			sp.hasValue = true
			skipSpace()
			if i >= len(raw) || raw[i] == '>' {
				sp.valStart, sp.valEnd = i, i
				break
			}
			if q := raw[i]; q == '"' || q == '\'' {
				sp.quote = q
				i++
				sp.valStart = i
				for i < len(raw) && raw[i] != q {
					i++
				}
				sp.valEnd = i
				if i < len(raw) {
					i++
				}
				break
			}
			sp.valStart = i
			for i < len(raw) && !isSpace(raw[i]) && raw[i] != '>' {
				i++
			}
			sp.valEnd = i
			if i < len(raw) && isSpace(raw[i]) {
				i++
			}
		}
		seenKey := rewriteLowerASCII(sp.key)
		if sp.key != "" && !seen[seenKey] {
			seen[seenKey] = true
			sp.key = strings.ReplaceAll(seenKey, "\x00", "\uFFFD")
			spans = append(spans, sp)
		}
		skipSpace()
	}
	return spans
}

// rewriteLowerASCII lower-cases A-Z only, as the tokenizer does.
func rewriteLowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
