package followed

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// TokenKind says which tracking URL a token belongs to, so one endpoint cannot be replayed on another.
type TokenKind uint8

// The kinds of tracking URL Engage puts in a render.
const (
	TokenOpen       TokenKind = 1 // the tracking pixel
	TokenClick      TokenKind = 2 // a redirect link
	TokenAttachment TokenKind = 3 // a tracked attachment link
	TokenHoneypot   TokenKind = 4 // the invisible link only machines follow
	TokenOptOut     TokenKind = 5 // the recipient's opt-out link
)

// String names the kind for logs and errors.
func (k TokenKind) String() string {
	switch k {
	case TokenOpen:
		return "open"
	case TokenClick:
		return "click"
	case TokenAttachment:
		return "attachment"
	case TokenHoneypot:
		return "honeypot"
	case TokenOptOut:
		return "opt-out"
	}
	return fmt.Sprintf("TokenKind(%d)", uint8(k))
}

// Token is what a tracking URL proves.
type Token struct {
	Kind      TokenKind
	MessageID string // opaque id, up to 64 bytes
	Recipient int    // index of the recipient in the message for an individual render; -1 for the shared render
	Link      int    // index of the link (clicks) or attachment (attachments) in the message; 0 otherwise
	URL       string // target of a click / attachment / honeypot token; empty for opens
}

// ErrBadToken is what every forged, altered or malformed tracking token yields, so handlers need one check.
var ErrBadToken = errors.New("followed: invalid tracking token")

const (
	tokenVersion = 1
	// tokenMACSize is the HMAC-SHA256 tag truncated to 128 bits: forging stays out of reach and URLs stay short.
	tokenMACSize = 16
	// tokenMaxLength bounds an encoded token so hostile input is rejected before any decoding work.
	tokenMaxLength = 4096
	// tokenMaxMessageID bounds the opaque message id a token carries.
	tokenMaxMessageID = 64
	// tokenMaxIndex keeps recipient and link indexes in a range every platform's int holds.
	tokenMaxIndex = 1<<31 - 1
)

// tokenEncoding is strict so that no two different strings decode to the same bytes, but for the line
// breaks every base64 decoder skips, which Parse refuses first.
var tokenEncoding = base64.RawURLEncoding.Strict()

// check says why a token cannot be signed, or parsed after its signature verified.
func (t Token) check() error {
	if t.Kind < TokenOpen || t.Kind > TokenOptOut {
		return fmt.Errorf("unknown kind %d", uint8(t.Kind))
	}
	if t.MessageID == "" || len(t.MessageID) > tokenMaxMessageID {
		return fmt.Errorf("message id of %d bytes (want 1-%d)", len(t.MessageID), tokenMaxMessageID)
	}
	if t.Recipient < -1 || t.Recipient > tokenMaxIndex {
		return fmt.Errorf("recipient index %d out of range", t.Recipient)
	}
	if t.Link < 0 || t.Link > tokenMaxIndex {
		return fmt.Errorf("link index %d out of range", t.Link)
	}
	switch t.Kind {
	case TokenClick, TokenAttachment:
		if t.URL == "" {
			return fmt.Errorf("%s token without a target URL", t.Kind)
		}
	case TokenOpen, TokenOptOut:
		if t.URL != "" {
			return fmt.Errorf("%s token with a target URL", t.Kind)
		}
	}
	return nil
}

// tokenPayload lays out the signed bytes: version, kind, key id, message id, recipient+1, link, URL;
// strings are length-prefixed, numbers are unsigned varints.
func tokenPayload(keyID string, t Token) []byte {
	b := make([]byte, 0, 2+1+len(keyID)+1+len(t.MessageID)+3*binary.MaxVarintLen32+len(t.URL)+tokenMACSize)
	b = append(b, tokenVersion, byte(t.Kind))
	b = binary.AppendUvarint(b, uint64(len(keyID)))
	b = append(b, keyID...)
	b = binary.AppendUvarint(b, uint64(len(t.MessageID)))
	b = append(b, t.MessageID...)
	b = binary.AppendUvarint(b, uint64(t.Recipient+1))
	b = binary.AppendUvarint(b, uint64(t.Link))
	b = binary.AppendUvarint(b, uint64(len(t.URL)))
	b = append(b, t.URL...)
	return b
}

// tokenMAC computes the truncated tag of a payload under one secret.
func tokenMAC(secret, payload []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write(payload)
	return m.Sum(nil)[:tokenMACSize]
}

// Sign encodes a token into a URL-safe string signed with the ring's first key.
func (r *KeyRing) Sign(t Token) (string, error) {
	if r == nil || len(r.keys) == 0 {
		return "", errors.New("sign tracking token: empty key ring")
	}
	if err := t.check(); err != nil {
		return "", fmt.Errorf("sign tracking token: %w", err)
	}
	k := r.keys[0]
	payload := tokenPayload(k.ID, t)
	signed := append(payload, tokenMAC(k.Secret, payload)...)
	if n := tokenEncoding.EncodedLen(len(signed)); n > tokenMaxLength {
		return "", fmt.Errorf("sign tracking token: %d characters encoded, over the %d limit (URL of %d bytes)", n, tokenMaxLength, len(t.URL))
	}
	return tokenEncoding.EncodeToString(signed), nil
}

// Parse verifies a token signed by any key of the ring and decodes it.
func (r *KeyRing) Parse(s string) (Token, error) {
	if len(s) > tokenMaxLength {
		return Token{}, fmt.Errorf("%w: %d characters, over the %d limit", ErrBadToken, len(s), tokenMaxLength)
	}
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		return Token{}, fmt.Errorf("%w: line break at character %d", ErrBadToken, i)
	}
	raw, err := tokenEncoding.DecodeString(s)
	if err != nil {
		return Token{}, fmt.Errorf("%w: not base64url: %v", ErrBadToken, err)
	}
	if len(raw) < 2+tokenMACSize {
		return Token{}, fmt.Errorf("%w: %d bytes is too short", ErrBadToken, len(raw))
	}
	payload, mac := raw[:len(raw)-tokenMACSize], raw[len(raw)-tokenMACSize:]
	d := tokenDecoder{b: payload}
	if v := d.byte(); v != tokenVersion {
		return Token{}, fmt.Errorf("%w: unknown version %d", ErrBadToken, v)
	}
	kind := TokenKind(d.byte())
	keyID := d.bytes(maxKeyIDLength)
	if d.err != nil {
		return Token{}, fmt.Errorf("%w: key id: %v", ErrBadToken, d.err)
	}
	var secret []byte
	if r != nil {
		secret = r.byID[string(keyID)]
	}
	if secret == nil {
		return Token{}, fmt.Errorf("%w: unknown key %q", ErrBadToken, keyID)
	}
	if !hmac.Equal(mac, tokenMAC(secret, payload)) {
		return Token{}, fmt.Errorf("%w: signature does not match", ErrBadToken)
	}
	// From here on the bytes are ours: a decoding failure means a bug or a leaked key, still not a panic.
	t := Token{Kind: kind}
	t.MessageID = string(d.bytes(tokenMaxMessageID))
	t.Recipient = int(d.uvarint(tokenMaxIndex+1)) - 1
	t.Link = int(d.uvarint(tokenMaxIndex))
	t.URL = string(d.bytes(tokenMaxLength))
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return Token{}, fmt.Errorf("%w: %v", ErrBadToken, d.err)
	}
	if err := t.check(); err != nil {
		return Token{}, fmt.Errorf("%w: %v", ErrBadToken, err)
	}
	return t, nil
}

// tokenDecoder reads a payload field by field and remembers the first failure.
type tokenDecoder struct {
	b   []byte
	err error
}

func (d *tokenDecoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.err = errors.New("truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *tokenDecoder) uvarint(max uint64) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errors.New("bad varint")
		return 0
	}
	if v > max {
		d.err = fmt.Errorf("number %d over %d", v, max)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *tokenDecoder) bytes(max int) []byte {
	n := int(d.uvarint(uint64(max)))
	if d.err != nil {
		return nil
	}
	if n > len(d.b) {
		d.err = fmt.Errorf("length %d past the end", n)
		return nil
	}
	s := d.b[:n]
	d.b = d.b[n:]
	return s
}
