package followed

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// testKey makes a deterministic key so failures reproduce.
func testKey(id string, fill byte) Key {
	return Key{ID: id, Secret: bytes.Repeat([]byte{fill}, 32)}
}

func testRing(t testing.TB, keys ...Key) *KeyRing {
	t.Helper()
	r, err := NewKeyRing(keys...)
	if err != nil {
		t.Fatalf("NewKeyRing: %v", err)
	}
	return r
}

func TestTokenRoundTrip(t *testing.T) {
	ring := testRing(t, testKey("k1", 1))
	tests := []struct {
		name string
		tok  Token
	}{
		{"open shared render", Token{Kind: TokenOpen, MessageID: "m1", Recipient: -1}},
		{"open per recipient", Token{Kind: TokenOpen, MessageID: "01JD3Z8Q9T5XKQ2M7V4N6B8C0D", Recipient: 3}},
		{"click", Token{Kind: TokenClick, MessageID: "m1", Recipient: 0, Link: 7, URL: "https://example.com/a?b=1&c=2#frag"}},
		{"click unicode", Token{Kind: TokenClick, MessageID: "m1", Recipient: 2, Link: 1, URL: "https://例え.jp/パス?q=ü"}},
		{"attachment", Token{Kind: TokenAttachment, MessageID: "m1", Recipient: -1, Link: 2, URL: "https://contoso.sharepoint.com/:b:/g/personal/x"}},
		{"honeypot with url", Token{Kind: TokenHoneypot, MessageID: "m1", Recipient: 1, URL: "https://engage.test/"}},
		{"honeypot without url", Token{Kind: TokenHoneypot, MessageID: "m1", Recipient: 1}},
		{"opt-out", Token{Kind: TokenOptOut, MessageID: "m1", Recipient: 4}},
		{"largest indexes", Token{Kind: TokenClick, MessageID: strings.Repeat("x", 64), Recipient: tokenMaxIndex, Link: tokenMaxIndex, URL: "http://a"}},
		{"binary message id", Token{Kind: TokenOpen, MessageID: "\x00\xff/?#", Recipient: -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ring.Sign(tc.tok)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			for _, c := range []byte(s) {
				if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
					t.Fatalf("token %q has a character %q that is not URL-safe", s, c)
				}
			}
			got, err := ring.Parse(s)
			if err != nil {
				t.Fatalf("Parse(%q): %v", s, err)
			}
			if got != tc.tok {
				t.Fatalf("Parse(Sign(%+v)) = %+v", tc.tok, got)
			}
		})
	}
}

func TestTokenOpenIsShort(t *testing.T) {
	ring := testRing(t, testKey("k1", 1))
	s, err := ring.Sign(Token{Kind: TokenOpen, MessageID: "01JD3Z8Q9T5XKQ2M7V4N6B8C0D", Recipient: 12})
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	// 2 header bytes, 3 key id, 27 message id, 2 indexes, 1 URL length, 16 MAC = 51 bytes = 68 characters.
	if len(s) > 70 {
		t.Fatalf("open token is %d characters, want at most 70: %s", len(s), s)
	}
}

func TestTokenSignRejects(t *testing.T) {
	ring := testRing(t, testKey("k1", 1))
	tests := []struct {
		name string
		tok  Token
	}{
		{"zero kind", Token{MessageID: "m", Recipient: -1}},
		{"unknown kind", Token{Kind: 9, MessageID: "m", Recipient: -1}},
		{"empty message id", Token{Kind: TokenOpen, Recipient: -1}},
		{"long message id", Token{Kind: TokenOpen, MessageID: strings.Repeat("m", 65), Recipient: -1}},
		{"recipient below -1", Token{Kind: TokenOpen, MessageID: "m", Recipient: -2}},
		{"negative link", Token{Kind: TokenClick, MessageID: "m", Link: -1, URL: "http://a"}},
		{"click without url", Token{Kind: TokenClick, MessageID: "m"}},
		{"attachment without url", Token{Kind: TokenAttachment, MessageID: "m"}},
		{"open with url", Token{Kind: TokenOpen, MessageID: "m", URL: "http://a"}},
		{"opt-out with url", Token{Kind: TokenOptOut, MessageID: "m", URL: "http://a"}},
		{"url too long", Token{Kind: TokenClick, MessageID: "m", URL: "http://a/" + strings.Repeat("p", 3100)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if s, err := ring.Sign(tc.tok); err == nil {
				t.Fatalf("Sign(%+v) = %q, want an error", tc.tok, s)
			}
		})
	}
	var empty *KeyRing
	if _, err := empty.Sign(Token{Kind: TokenOpen, MessageID: "m"}); err == nil {
		t.Fatal("nil ring signed a token")
	}
}

func TestTokenTamper(t *testing.T) {
	ring := testRing(t, testKey("k1", 1))
	other := testRing(t, testKey("k1", 2)) // same id, different secret
	tok := Token{Kind: TokenClick, MessageID: "m-42", Recipient: 1, Link: 3, URL: "https://example.com/pricing"}
	good, err := ring.Sign(tok)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	forged, err := other.Sign(tok)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	raw, err := tokenEncoding.DecodeString(good)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	// A payload re-signed by hand with a wrong key id must not verify either.
	unknownKey := append(tokenPayload("k2", tok), tokenMAC(bytes.Repeat([]byte{1}, 32), tokenPayload("k2", tok))...)
	tests := []struct {
		name  string
		token string
	}{
		{"empty", ""},
		{"truncated by one character", good[:len(good)-1]},
		{"truncated to half", good[:len(good)/2]},
		{"extended", good + "A"},
		{"extended by a byte", tokenEncoding.EncodeToString(append(append([]byte(nil), raw...), 0))},
		{"wrong key", forged},
		{"unknown key id", tokenEncoding.EncodeToString(unknownKey)},
		{"padded", good + "=="},
		{"standard alphabet", strings.NewReplacer("-", "+", "_", "/").Replace(good) + "+"},
		{"space", " " + good},
		// base64's decoder skips line breaks even when strict: the same token under another string.
		{"line feed inside", good[:5] + "\n" + good[5:]},
		{"carriage return at the end", good + "\r"},
		{"too long", strings.Repeat("A", tokenMaxLength+4)},
		{"only a mac", tokenEncoding.EncodeToString(raw[len(raw)-tokenMACSize:])},
	}
	// Every single bit flip of the decoded bytes.
	for i := range raw {
		for bit := range 8 {
			b := append([]byte(nil), raw...)
			b[i] ^= 1 << bit
			tests = append(tests, struct{ name, token string }{"bit flip", tokenEncoding.EncodeToString(b)})
		}
	}
	// Every character of the string replaced by a neighbouring one of the alphabet.
	for i := range good {
		b := []byte(good)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		tests = append(tests, struct{ name, token string }{"character change", string(b)})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ring.Parse(tc.token)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want an error", tc.token, got)
			}
			if !errors.Is(err, ErrBadToken) {
				t.Fatalf("Parse(%q) error %v is not ErrBadToken", tc.token, err)
			}
		})
	}
}

func TestTokenValidSignatureBadFields(t *testing.T) {
	// A signer with the key but a broken encoder must still be refused: fields are checked after the MAC.
	key := testKey("k1", 1)
	ring := testRing(t, key)
	sign := func(payload []byte) string {
		return tokenEncoding.EncodeToString(append(payload, tokenMAC(key.Secret, payload)...))
	}
	good := tokenPayload("k1", Token{Kind: TokenOpen, MessageID: "m", Recipient: -1})
	tests := []struct {
		name    string
		payload []byte
	}{
		{"version 2", append([]byte{2}, good[1:]...)},
		{"kind 0", append([]byte{1, 0}, good[2:]...)},
		{"trailing byte", append(append([]byte(nil), good...), 0)},
		{"missing url length", good[:len(good)-1]},
		{"open with url", tokenPayload("k1", Token{Kind: TokenOpen, MessageID: "m", Recipient: -1, URL: "http://a"})},
		{"huge link index", append(binary.AppendUvarint(tokenPayload("k1", Token{Kind: TokenOpen, MessageID: "m"})[:8:8], 1<<40), 0)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := ring.Parse(sign(tc.payload)); !errors.Is(err, ErrBadToken) {
				t.Fatalf("Parse = %+v, %v; want ErrBadToken", got, err)
			}
		})
	}
}

func TestTokenRotation(t *testing.T) {
	old := testKey("2025", 1)
	next := testKey("2026", 2)
	before := testRing(t, old)
	after := testRing(t, next, old)
	tok := Token{Kind: TokenOpen, MessageID: "m", Recipient: 0}

	sentBefore, err := before.Sign(tok)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	sentAfter, err := after.Sign(tok)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	tests := []struct {
		name  string
		ring  *KeyRing
		token string
		ok    bool
	}{
		{"old token, rotated ring", after, sentBefore, true},
		{"new token, rotated ring", after, sentAfter, true},
		{"new token, old ring", before, sentAfter, false},
		{"old token, ring without the old key", testRing(t, next), sentBefore, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.ring.Parse(tc.token)
			if tc.ok && (err != nil || got != tok) {
				t.Fatalf("Parse = %+v, %v; want %+v", got, err, tok)
			}
			if !tc.ok && !errors.Is(err, ErrBadToken) {
				t.Fatalf("Parse = %+v, %v; want ErrBadToken", got, err)
			}
		})
	}
	if sentBefore == sentAfter {
		t.Fatal("rotated ring signed with the old key")
	}
}

func FuzzParseToken(f *testing.F) {
	ring := testRing(f, testKey("k1", 1), testKey("old", 2))
	oldRing := testRing(f, testKey("old", 2))
	seeds := []Token{
		{Kind: TokenOpen, MessageID: "m1", Recipient: -1},
		{Kind: TokenClick, MessageID: "m1", Recipient: 2, Link: 5, URL: "https://example.com/x?y=z"},
		{Kind: TokenAttachment, MessageID: "m2", Recipient: 0, Link: 1, URL: "https://a.b/c"},
		{Kind: TokenHoneypot, MessageID: "m3", Recipient: 0},
		{Kind: TokenOptOut, MessageID: "m4", Recipient: 9},
	}
	for _, tok := range seeds {
		for _, r := range []*KeyRing{ring, oldRing} {
			s, err := r.Sign(tok)
			if err != nil {
				f.Fatalf("Sign: %v", err)
			}
			f.Add(s)
		}
	}
	f.Add("")
	f.Add("AQE")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ring.Parse(s)
		if err != nil {
			if !errors.Is(err, ErrBadToken) {
				t.Fatalf("Parse(%q) error %v is not ErrBadToken", s, err)
			}
			return
		}
		again, err := ring.Sign(tok)
		if err != nil {
			t.Fatalf("Parse(%q) = %+v which does not sign again: %v", s, tok, err)
		}
		// One string per token: signed again by the key that verified it, a token is the same string.
		if old, err := oldRing.Sign(tok); err != nil || again != s && old != s {
			t.Fatalf("Parse(%q) = %+v, which signs as %q (or %q with the old key)", s, tok, again, old)
		}
		back, err := ring.Parse(again)
		if err != nil || back != tok {
			t.Fatalf("re-signed %+v parsed back as %+v, %v", tok, back, err)
		}
	})
}
