package followed

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	xhtml "golang.org/x/net/html"
)

// goldenUpdate is the package's -update flag: the golden tests rewrite their files instead of comparing.
var goldenUpdate = flag.Bool("update", false, "rewrite the golden files under testdata")

// testRewriter is the deterministic rewriter the golden files were made with.
func testRewriter() Rewriter {
	return Rewriter{
		Click:    func(i int, _ string) string { return "https://engage.test/c/" + strconv.Itoa(i) },
		Pixel:    "https://engage.test/o/p.gif",
		Honeypot: "https://engage.test/h/hp",
		IsOwn:    func(u string) bool { return strings.HasPrefix(u, "https://engage.test/") },
	}
}

// goldenRewrite is the text a golden file holds: links and warnings first, then the HTML.
func goldenRewrite(res RewriteResult) string {
	var b strings.Builder
	b.WriteString("== links\n")
	for i, l := range res.Links {
		fmt.Fprintf(&b, "%d %s\n", i, l)
	}
	b.WriteString("== warnings\n")
	for _, w := range res.Warnings {
		b.WriteString(w + "\n")
	}
	b.WriteString("== html\n")
	b.WriteString(res.HTML)
	return b.String()
}

func TestRewriteGolden(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "rewrite", "*.*"))
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for _, in := range inputs {
		ext := filepath.Ext(in)
		if ext != ".html" && ext != ".txt" {
			continue
		}
		n++
		name := strings.TrimSuffix(filepath.Base(in), ext)
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			src := string(b)
			if ext == ".txt" {
				src = TextToHTML(src)
			}
			rw := testRewriter()
			res := rw.Rewrite(src)
			checkRewrite(t, rw, src, res)
			if again := rw.Rewrite(src); goldenRewrite(again) != goldenRewrite(res) {
				t.Fatal("rendering the same HTML twice gave different results")
			}
			got := goldenRewrite(res)
			golden := strings.TrimSuffix(in, ext) + ".golden"
			if *goldenUpdate {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("output differs from %s (run with -update after checking the change):\n%s", golden, got)
			}
		})
	}
	if n < 7 {
		t.Fatalf("found %d golden inputs, want at least 7", n)
	}
}

func TestRewriteRules(t *testing.T) {
	const tail = `<a href="https://engage.test/h/hp" aria-hidden="true" tabindex="-1" style="display:none;visibility:hidden;mso-hide:all;position:absolute;width:0;height:0;overflow:hidden;font-size:0;line-height:0"></a>` +
		`<img src="https://engage.test/o/p.gif" width="1" height="1" alt="" border="0" style="display:block;width:1px;height:1px;border:0">`
	tests := []struct {
		name     string
		src      string
		want     string
		links    []string
		warnings []string
	}{
		{
			name:  "double quoted, entity decoded once and escaped again",
			src:   `<body><a href="https://a.example/?x=1&amp;y=2">a</a></body>`,
			want:  `<body><a href="https://engage.test/c/0">a</a>` + tail + `</body>`,
			links: []string{"https://a.example/?x=1&y=2"},
		},
		{
			name:  "double-escaped entity stays escaped once",
			src:   `<a href="https://a.example/?q=&amp;amp;">a</a>`,
			want:  `<a href="https://engage.test/c/0">a</a>` + tail,
			links: []string{"https://a.example/?q=&amp;"},
		},
		{
			name:  "legacy entity without semicolon before = is not decoded in attributes",
			src:   `<a href="https://a.example/?a=1&copy=2&not;">a</a>`,
			want:  `<a href="https://engage.test/c/0">a</a>` + tail,
			links: []string{"https://a.example/?a=1&copy=2¬"},
		},
		{
			name:  "single quotes kept",
			src:   `<a class=x href='https://a.example/it&#39;s'>a</a>`,
			want:  `<a class=x href='https://engage.test/c/0'>a</a>` + tail,
			links: []string{"https://a.example/it's"},
		},
		{
			name:  "unquoted kept unquoted",
			src:   `<a href=https://a.example/x>a</a>`,
			want:  `<a href=https://engage.test/c/0>a</a>` + tail,
			links: []string{"https://a.example/x"},
		},
		{
			name:  "same URL same index, document order",
			src:   `<a href="https://b.example/">b</a><a href="https://a.example/">a</a><area href="https://b.example/">`,
			want:  `<a href="https://engage.test/c/0">b</a><a href="https://engage.test/c/1">a</a><area href="https://engage.test/c/0">` + tail,
			links: []string{"https://b.example/", "https://a.example/"},
		},
		{
			name: "left alone: mailto, tel, anchors, relative, own, opted out, other schemes",
			src: `<a href="mailto:a@b.example">m</a><a href="tel:+1">t</a><a href="#top">#</a><a href="/x">r</a>` +
				`<a href="//cdn.example/x">p</a><a href="https://engage.test/o/x">own</a>` +
				`<a data-engage-track="off" href="https://a.example/">off</a><a href="ftp://a.example/">f</a><img src="https://a.example/i.png">`,
			want: `<a href="mailto:a@b.example">m</a><a href="tel:+1">t</a><a href="#top">#</a><a href="/x">r</a>` +
				`<a href="//cdn.example/x">p</a><a href="https://engage.test/o/x">own</a>` +
				`<a data-engage-track="off" href="https://a.example/">off</a><a href="ftp://a.example/">f</a><img src="https://a.example/i.png">` + tail,
		},
		{
			name:     "spaces and control characters warn",
			src:      `<a href="https://a.example/a b">s</a><a href="https://a.example/a&#1;b">c</a><a href="https://a.example/a b">again</a>`,
			want:     `<a href="https://a.example/a b">s</a><a href="https://a.example/a&#1;b">c</a><a href="https://a.example/a b">again</a>` + tail,
			warnings: []string{`link "https://a.example/a b" has spaces or control characters: left untracked`, `link "https://a.example/a\x01b" has spaces or control characters: left untracked`},
		},
		{
			name:  "surrounding whitespace is not part of the URL",
			src:   "<a href=\"\n https://a.example/ \t\">a</a>",
			want:  `<a href="https://engage.test/c/0">a</a>` + tail,
			links: []string{"https://a.example/"},
		},
		{
			name:  "unicode and fragment kept",
			src:   `<a href="https://ü.example/パス?q=ß#frag">u</a>`,
			want:  `<a href="https://engage.test/c/0">u</a>` + tail,
			links: []string{"https://ü.example/パス?q=ß#frag"},
		},
		{
			name:  "MSO conditional comment",
			src:   `<!--[if mso]><v:roundrect href="https://a.example/?b=1&amp;c=2" arcsize="10%"><center>Go</center></v:roundrect><![endif]--><!-- <a href="https://c.example/"> -->`,
			want:  `<!--[if mso]><v:roundrect href="https://engage.test/c/0" arcsize="10%"><center>Go</center></v:roundrect><![endif]--><!-- <a href="https://c.example/"> -->` + tail,
			links: []string{"https://a.example/?b=1&c=2"},
		},
		{
			name:  "pixel before the last body end tag",
			src:   `<html><body>a</body><!-- x --></body></html>`,
			want:  `<html><body>a</body><!-- x -->` + tail + `</body></html>`,
			links: nil,
		},
		{
			name: "empty input",
			src:  ``,
			want: tail,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rw := testRewriter()
			res := rw.Rewrite(tc.src)
			if res.HTML != tc.want {
				t.Errorf("HTML\n got %s\nwant %s", res.HTML, tc.want)
			}
			if fmt.Sprintf("%q", res.Links) != fmt.Sprintf("%q", tc.links) {
				t.Errorf("Links = %q, want %q", res.Links, tc.links)
			}
			if fmt.Sprintf("%q", res.Warnings) != fmt.Sprintf("%q", tc.warnings) {
				t.Errorf("Warnings = %q, want %q", res.Warnings, tc.warnings)
			}
			checkRewrite(t, rw, tc.src, res)
		})
	}
}

func TestRewriteOptions(t *testing.T) {
	src := `<p><a href="https://a.example/">a</a></p>`
	tests := []struct {
		name string
		rw   Rewriter
		want string
	}{
		{"nothing to add", Rewriter{}, src},
		{"pixel only, escaped", Rewriter{Pixel: "https://e.example/o?a=1&b=2"}, src + `<img src="https://e.example/o?a=1&amp;b=2" width="1" height="1" alt="" border="0" style="display:block;width:1px;height:1px;border:0">`},
		{"links only, click URL escaped", Rewriter{Click: func(i int, u string) string { return "https://e.example/c?i=" + strconv.Itoa(i) + "&u=\"" }},
			`<p><a href="https://e.example/c?i=0&amp;u=&#34;">a</a></p>`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.rw.Rewrite(src).HTML; got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestRewriteScanAttrsAgreesWithTokenizer(t *testing.T) {
	tags := []string{
		`<a href="x">`, `<a href='x' class=y>`, `<a href=x>`, `<a href = "x" >`, `<a/href="x">`, `<a =href="x">`,
		`<a href="x" href="y">`, `<A HREF="x" Href="y">`, `<a href>`, `<a href=>`, `<a href=/>`, `<a href="x"/>`,
		`<a b c=d e = 'f' href=x/>`, `<a href="a>b">`, "<a\thref\n=\fx>", `<a ""="1" href="x">`, `<a href="x"y=z>`,
		"<a h\x00ref=\"x\">", `<a x='"' href="'">`, `<a / / href="x" / >`,
	}
	for _, tag := range tags {
		t.Run(tag, func(t *testing.T) {
			z := xhtml.NewTokenizer(strings.NewReader(tag))
			if tt := z.Next(); tt != xhtml.StartTagToken && tt != xhtml.SelfClosingTagToken {
				t.Fatalf("not a start tag: %v", tt)
			}
			var keys []string
			if _, hasAttr := z.TagName(); hasAttr {
				for more := true; more; {
					var k []byte
					k, _, more = z.TagAttr()
					keys = append(keys, string(k))
				}
			}
			spans := rewriteScanAttrs(tag)
			var got []string
			for _, s := range spans {
				got = append(got, s.key)
			}
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", keys) {
				t.Fatalf("scanner found %q, tokenizer %q", got, keys)
			}
		})
	}
}

func BenchmarkRewrite(b *testing.B) {
	src, err := os.ReadFile(filepath.Join("testdata", "rewrite", "newsletter.html"))
	if err != nil {
		b.Fatal(err)
	}
	rw := testRewriter()
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		rw.Rewrite(string(src))
	}
}

func FuzzRewrite(f *testing.F) {
	inputs, _ := filepath.Glob(filepath.Join("testdata", "rewrite", "*.html"))
	for _, in := range inputs {
		if b, err := os.ReadFile(in); err == nil {
			f.Add(string(b))
		}
	}
	for _, s := range []string{
		``, `<a href="https://a.example/?x=1&amp;y=2">`, `<a href=https://a.example/>`, `<body></body>`,
		`<!--[if mso]><v:rect href='http://x.example/'/><![endif]-->`, `<a href="http://a b">`, `<a href="https://a.example/`,
		`<script><a href="https://a.example/"></script>`, `<a href="HTTPS://A.EXAMPLE">`, `<<a/href=http://a.example/x/>`,
	} {
		f.Add(s)
	}
	rw := testRewriter()
	rw.Click = func(i int, _ string) string { return "https://engage.test/c/" + strconv.Itoa(i) + "x" }
	f.Fuzz(func(t *testing.T, src string) {
		checkRewrite(t, rw, src, rw.Rewrite(src))
	})
}

// checkRewrite verifies a render against its source without trusting the rewriter's own bookkeeping:
// with the honeypot and pixel put where they belong, the source and the render tokenize alike, every
// token that differs is a tag whose only change is one href replaced by the click URL of a link whose
// decoded value is exactly the entry in Links, and the Links entries are distinct, all used, in order.
func checkRewrite(t *testing.T, rw Rewriter, src string, res RewriteResult) {
	t.Helper()
	at := len(src)
	z := xhtml.NewTokenizer(strings.NewReader(src))
	for off := 0; ; {
		tt := z.Next()
		n := len(z.Raw())
		if tt == xhtml.ErrorToken {
			break
		}
		if name, _ := z.TagName(); tt == xhtml.EndTagToken && string(name) == "body" {
			at = off
		}
		off += n
	}
	expected := src[:at] + rw.trackingTail() + src[at:]

	clicks := map[string]int{}
	for i, l := range res.Links {
		c := rw.Click(i, l)
		if _, dup := clicks[c]; dup {
			t.Fatalf("Links has %q twice", l)
		}
		clicks[c] = i
	}
	next := 0 // the index the next first-seen link must have
	checkRewriteTokens(t, expected, res.HTML, false, clicks, res.Links, &next)
	if next != len(res.Links) {
		t.Fatalf("render uses %d links, Links has %d", next, len(res.Links))
	}
}

func checkRewriteTokens(t *testing.T, want, got string, inComment bool, clicks map[string]int, links []string, next *int) {
	t.Helper()
	za := xhtml.NewTokenizer(strings.NewReader(want))
	zb := xhtml.NewTokenizer(strings.NewReader(got))
	offA, offB := 0, 0
	for {
		ta, tb := za.Next(), zb.Next()
		na, nb := len(za.Raw()), len(zb.Raw())
		rawA, rawB := want[offA:offA+na], got[offB:offB+nb]
		offA, offB = offA+na, offB+nb
		if ta != tb {
			t.Fatalf("token %v %q became %v %q", ta, rawA, tb, rawB)
		}
		if ta == xhtml.ErrorToken {
			if rawA != rawB || want[offA:] != got[offB:] {
				t.Fatalf("ends differ: %q then %q, want %q then %q", rawB, got[offB:], rawA, want[offA:])
			}
			return
		}
		attrsA, attrsB := checkRewriteAttrs(za), checkRewriteAttrs(zb)
		if rawA == rawB {
			continue
		}
		if ta == xhtml.CommentToken && !inComment {
			if !strings.HasPrefix(rawA, "<!--") || !strings.HasPrefix(rawB, "<!--") || !strings.HasSuffix(rawA, "-->") || !strings.HasSuffix(rawB, "-->") {
				t.Fatalf("comment %q became %q", rawA, rawB)
			}
			checkRewriteTokens(t, rawA[4:len(rawA)-3], rawB[4:len(rawB)-3], true, clicks, links, next)
			continue
		}
		if ta != xhtml.StartTagToken && ta != xhtml.SelfClosingTagToken {
			t.Fatalf("%v %q became %q", ta, rawA, rawB)
		}
		if len(attrsA) != len(attrsB) {
			t.Fatalf("tag %q became %q: attributes differ", rawA, rawB)
		}
		changed := -1
		for i := range attrsA {
			if attrsA[i] == attrsB[i] {
				continue
			}
			if changed >= 0 || attrsA[i][0] != "href" || attrsB[i][0] != "href" {
				t.Fatalf("tag %q became %q: more than one href changed", rawA, rawB)
			}
			changed = i
		}
		if changed < 0 {
			t.Fatalf("tag %q became %q with the same attributes", rawA, rawB)
		}
		click := attrsB[changed][1]
		i, ok := clicks[click]
		if !ok {
			t.Fatalf("tag %q became %q: %q is no link's click URL", rawA, rawB, click)
		}
		if orig := strings.Trim(attrsA[changed][1], " \t\n\f\r"); orig != links[i] {
			t.Fatalf("tag %q: href %q tracked as link %d %q", rawA, orig, i, links[i])
		}
		if i > *next {
			t.Fatalf("link %d seen before link %d", i, *next)
		}
		if i == *next {
			*next++
		}
		// Outside the value, the tag's bytes are the author's (an unquoted value may gain quotes).
		at := strings.Index(rawB, click)
		if at < 0 {
			t.Fatalf("tag %q: click URL %q not written as is", rawB, click)
		}
		pre, post := rawB[:at], rawB[at+len(click):]
		if !(strings.HasPrefix(rawA, pre) && strings.HasSuffix(rawA, post) && len(pre)+len(post) <= len(rawA)) {
			pre, post = strings.TrimSuffix(pre, `"`), strings.TrimPrefix(post, `"`)
			if !(strings.HasPrefix(rawA, pre) && strings.HasSuffix(rawA, post) && len(pre)+len(post) <= len(rawA)) {
				t.Fatalf("tag %q became %q: bytes outside the href value changed", rawA, rawB)
			}
		}
	}
}

func checkRewriteAttrs(z *xhtml.Tokenizer) [][2]string {
	var attrs [][2]string
	if _, hasAttr := z.TagName(); hasAttr {
		for more := true; more; {
			var k, v []byte
			k, v, more = z.TagAttr()
			attrs = append(attrs, [2]string{string(k), string(v)})
		}
	}
	return attrs
}
