package replies

import "testing"

func TestHTMLToText(t *testing.T) {
	tests := []struct {
		name, html, want string
	}{
		{"paragraphs", "<p>Hello</p><p>World</p>", "Hello\n\nWorld"},
		{"br", "one<br>two<br/>three", "one\ntwo\nthree"},
		{"entities", "Fish &amp; chips &lt;now&gt; &#39;ok&#39; 16&nbsp;Nov", "Fish & chips <now> 'ok' 16\u00a0Nov"},
		{"script and style dropped", "<style>p{color:red}</style><script>alert('x')</script><p>kept</p>", "kept"},
		{"title dropped", "<html><head><title>NDR</title></head><body>Body</body></html>", "Body"},
		{"unclosed head", "<html><head><meta charset=utf-8><body>Body text", "Body text"},
		{"source whitespace collapsed", "<p>a\n   b\t\tc</p>", "a b c"},
		{"list items", "<ul><li>one</li><li>two</li></ul>", "- one\n\n- two"},
		{"table cells", "<table><tr><td>a</td><td>b</td></tr></table>", "a b"},
		{"blockquote kept", "Reply<blockquote>quoted</blockquote>", "Reply\nquoted"},
		{"comment dropped", "a<!-- secret -->b", "ab"},
		{"broken markup", "<p>unclosed <b>bold <i>both", "unclosed bold both"},
		{"stray brackets", "5 < 6 and 7 > 3", "5 < 6 and 7 > 3"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := HTMLToText(tt.html); got != tt.want {
				t.Errorf("HTMLToText(%q) = %q, want %q", tt.html, got, tt.want)
			}
		})
	}
}
