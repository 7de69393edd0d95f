package followed

import (
	"html"
	"strings"
)

// PathOptOut is the recipient's opt-out link under the public URL; server routes it.
const PathOptOut = "/t/u/"

// SetOptOutLinks makes every tracked render for one recipient carry a link by which they can stop
// being followed, from the next render on. Shared renders get none: they name no one to opt out.
func (s *Service) SetOptOutLinks(on bool) { s.optOut.Store(on) }

// withOptOut adds the recipient's opt-out link to an author's HTML, before the last </body> when there
// is one. It points at Engage itself, so the rewriter leaves it untracked.
func (s *Service) withOptOut(src, messageID string, recipient int) string {
	if !s.optOut.Load() || recipient < 0 {
		return src
	}
	u, err := s.trackingURL("u", Token{Kind: TokenOptOut, MessageID: messageID, Recipient: recipient})
	if err != nil {
		return src // a message that cannot carry the link still goes; the sign error is a key problem
	}
	link := `<p style="font-size:11px;line-height:1.4;color:#6b6b6b;margin:16px 0 0">` +
		`<a href="` + html.EscapeString(u) + `" style="color:#6b6b6b">Opt out of email tracking</a></p>`
	for i := len(src) - len("</body"); i >= 0; i-- {
		// ASCII case folding only: byte offsets stay those of src whatever else the HTML holds.
		if src[i] == '<' && strings.EqualFold(src[i:i+len("</body")], "</body") {
			return src[:i] + link + src[i:]
		}
	}
	return src + link
}
