package followed

import "strings"

// TokenIn returns the first tracking token of this Engage in html that verifies, so that a body sent
// without Engage (the Outlook add-in has Outlook send its drafts) can be tied to the message it renders.
func (s *Service) TokenIn(html string) (Token, bool) {
	prefix := s.base.String() + "/t/"
	rest := html
	for {
		i := strings.Index(rest, prefix)
		if i < 0 {
			return Token{}, false
		}
		rest = rest[i+len(prefix):]
		if len(rest) < 2 || rest[1] != '/' { // a kind letter, then the token
			continue
		}
		tok := rest[2:]
		if end := strings.IndexFunc(tok, func(r rune) bool { return !isTokenChar(r) }); end >= 0 {
			tok = tok[:end]
		}
		if t, err := s.keys.Parse(tok); err == nil {
			return t, true
		}
	}
}

// isTokenChar says whether r belongs to base64url, the alphabet tokens are written in.
func isTokenChar(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_'
}
