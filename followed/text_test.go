package followed

import (
	"strings"
	"testing"

	xhtml "golang.org/x/net/html"
)

func TestTextToHTML(t *testing.T) {
	tests := []struct {
		name string
		text string
		body string // what goes between the wrapper's opening and closing
	}{
		{"empty", "", ""},
		{"escaped", `a < b & "c" > 'd'`, `a &lt; b &amp; &#34;c&#34; &gt; &#39;d&#39;`},
		{"line breaks of every kind", "a\nb\r\nc\rd", "a<br>\nb<br>\nc<br>\nd"},
		{"blank lines kept, final break dropped", "a\n\nb\n\n", "a<br>\n<br>\nb"},
		{"spaces kept", "  x  y z\tw", "&nbsp;&nbsp;x&nbsp;&nbsp;y z&nbsp;&nbsp;&nbsp;&nbsp;w"},
		{"URL linked, sentence punctuation left out", "See https://a.example/x?y=1&z=2.",
			`See <a href="https://a.example/x?y=1&amp;z=2">https://a.example/x?y=1&amp;z=2</a>.`},
		{"URL in brackets", "(http://a.example/b)", `(<a href="http://a.example/b">http://a.example/b</a>)`},
		{"two URLs", "HTTPS://A.example/ and https://b.example", `<a href="HTTPS://A.example/">HTTPS://A.example/</a> and <a href="https://b.example">https://b.example</a>`},
		{"not URLs", "xhttp://a.example http:// https://. é", "xhttp://a.example http:// https://. é"},
		{"URL ends at angle bracket", "<https://a.example/>", `&lt;<a href="https://a.example/">https://a.example/</a>&gt;`},
	}
	const head = "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n</head>\n<body>\n<div style=\"font-family:sans-serif\">\n"
	const foot = "\n</div>\n</body>\n</html>\n"
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := TextToHTML(tc.text)
			if want := head + tc.body + foot; got != want {
				t.Fatalf("TextToHTML(%q)\n got %q\nwant %q", tc.text, got, want)
			}
		})
	}
}

func FuzzTextToHTML(f *testing.F) {
	for _, s := range []string{"", "a\nb", "see https://a.example/x.", "<b>&amp;</b>", "  \t x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		doc := TextToHTML(text)
		// Whatever the text, it is data: the document has no elements but the wrapper, <br> and <a>.
		z := xhtml.NewTokenizer(strings.NewReader(doc))
		for {
			tt := z.Next()
			if tt == xhtml.ErrorToken {
				return
			}
			if tt != xhtml.StartTagToken && tt != xhtml.EndTagToken {
				continue
			}
			name, _ := z.TagName()
			switch string(name) {
			case "html", "head", "meta", "body", "div", "br", "a":
			default:
				t.Fatalf("text %q produced element %q", text, name)
			}
		}
	})
}
