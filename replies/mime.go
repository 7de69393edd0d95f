package replies

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"slices"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/htmlindex"
)

// MaxMessageSize is the largest raw message ParseMIME reads: Exchange Online's default message size limit.
const MaxMessageSize = 25 << 20

// ErrTooLarge is returned for messages over MaxMessageSize, so callers can tell it from malformed input.
var ErrTooLarge = errors.New("message larger than 25 MiB")

// Limits on the MIME tree, so that a hostile message cannot make parsing deep or long.
const (
	maxDepth = 16
	maxParts = 500
)

// ParseMIME builds an Inbound from a raw RFC 5322 message, such as Graph's /messages/{id}/$value: headers
// in order, decoded subject, sender address, the plain text of the body (HTML converted, quoted-printable,
// base64 and charsets decoded), delivery-status reports, and the Message-ID of a returned original.
//
// Only an oversized message or an unreadable header section is an error. A damaged body part is skipped
// rather than failing the whole message, because a truncated bounce is still a bounce.
func ParseMIME(raw []byte) (Inbound, error) {
	if len(raw) > MaxMessageSize {
		return Inbound{}, fmt.Errorf("parse message of %d bytes: %w", len(raw), ErrTooLarge)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return Inbound{}, fmt.Errorf("read message header: %w", err)
	}
	body, err := io.ReadAll(msg.Body)
	if err != nil {
		return Inbound{}, fmt.Errorf("read message body: %w", err)
	}
	header := textproto.MIMEHeader(msg.Header)
	in := Inbound{
		Headers:     orderedHeaders(raw),
		From:        senderAddress(header.Get("From")),
		Subject:     decodeHeader(header.Get("Subject")),
		ContentType: unfold(header.Get("Content-Type")),
	}
	w := walker{inReport: mediaType(in.ContentType) == "multipart/report"}
	w.entity(header, decodeTransfer(header.Get("Content-Transfer-Encoding"), body), 0)
	in.Text = strings.Join(w.texts, "\n\n")
	in.Reports = w.reports
	in.ReturnedID = w.returnedID
	return in, nil
}

// walker collects what classification needs while descending a MIME tree.
type walker struct {
	inReport   bool // the message is a multipart/report, so an enclosed message is the returned original
	parts      int
	texts      []string
	reports    []DeliveryStatus
	returnedID string
}

// entity handles one MIME entity whose body has already been transfer-decoded.
func (w *walker) entity(h textproto.MIMEHeader, body []byte, depth int) {
	w.parts++
	if w.parts > maxParts || depth > maxDepth {
		return
	}
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mt == "" {
		mt, params = mediaType(h.Get("Content-Type")), map[string]string{}
	}
	if mt == "" {
		mt = "text/plain" // RFC 2045's default
	}
	attachment := strings.EqualFold(firstToken(h.Get("Content-Disposition")), "attachment")
	switch {
	case strings.HasPrefix(mt, "multipart/"):
		w.multipart(mt, params["boundary"], body, depth)
	case mt == "message/delivery-status" || mt == "message/global-delivery-status":
		w.reports = append(w.reports, parseDeliveryStatus(decodeCharset(params["charset"], body))...)
	case mt == "message/rfc822" || mt == "message/global" || mt == "text/rfc822-headers":
		if w.inReport && w.returnedID == "" {
			for _, f := range orderedHeaders(body) {
				if strings.EqualFold(f.Name, "Message-ID") {
					if ids := ParseMessageIDs(f.Value); len(ids) > 0 {
						w.returnedID = ids[0]
					}
					break
				}
			}
		}
	case mt == "text/plain" && !attachment:
		w.texts = append(w.texts, strings.TrimSpace(decodeCharset(params["charset"], body)))
	case mt == "text/html" && !attachment:
		w.texts = append(w.texts, HTMLToText(decodeCharset(params["charset"], body)))
	}
}

// part is one child of a multipart entity, read and transfer-decoded.
type part struct {
	header textproto.MIMEHeader
	body   []byte
}

// multipart walks a multipart body. Of multipart/alternative only one child is read (plain text, else
// HTML, else the last, richest one), so the same words are not read twice.
func (w *walker) multipart(mt, boundary string, body []byte, depth int) {
	if boundary == "" {
		return
	}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	var parts []part
	for len(parts)+w.parts < maxParts {
		p, err := mr.NextPart() // decodes quoted-printable itself and drops the header
		if err != nil {
			break
		}
		data, _ := io.ReadAll(p) // keep what was readable of a damaged part
		parts = append(parts, part{p.Header, decodeTransfer(p.Header.Get("Content-Transfer-Encoding"), data)})
	}
	if mt == "multipart/alternative" && len(parts) > 0 {
		pick := slices.IndexFunc(parts, isType("text/plain"))
		if pick < 0 {
			pick = slices.IndexFunc(parts, isType("text/html"))
		}
		if pick < 0 {
			pick = len(parts) - 1
		}
		parts = parts[pick : pick+1]
	}
	for _, p := range parts {
		w.entity(p.header, p.body, depth+1)
	}
}

// isType returns a test for parts of the given media type.
func isType(mt string) func(part) bool {
	return func(p part) bool { return mediaType(p.header.Get("Content-Type")) == mt }
}

// mediaType returns the lower-case type/subtype of a Content-Type value, even a malformed one.
func mediaType(contentType string) string {
	if mt, _, err := mime.ParseMediaType(contentType); err == nil {
		return mt
	}
	t, _, _ := strings.Cut(contentType, ";")
	return strings.ToLower(strings.TrimSpace(t))
}

// decodeTransfer undoes a base64 or quoted-printable Content-Transfer-Encoding, keeping what decoded
// before any damage; other encodings are already plain.
func decodeTransfer(encoding string, body []byte) []byte {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "base64":
		clean := bytes.Map(func(r rune) rune {
			if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
				return -1
			}
			return r
		}, body)
		if i := bytes.IndexByte(clean, '='); i >= 0 {
			clean = clean[:i] // padding ends the data; decode without it
		}
		out, _ := io.ReadAll(base64.NewDecoder(base64.RawStdEncoding, bytes.NewReader(clean)))
		return out
	case "quoted-printable":
		out, _ := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
		return out
	}
	return body
}

// decodeCharset turns a body in the named charset into valid UTF-8; unknown charsets are read as UTF-8
// with invalid bytes replaced.
func decodeCharset(charset string, body []byte) string {
	cs := strings.ToLower(strings.TrimSpace(charset))
	if cs != "" && cs != "utf-8" && cs != "utf8" && cs != "us-ascii" {
		if enc, err := htmlindex.Get(cs); err == nil {
			if out, err := enc.NewDecoder().Bytes(body); err == nil {
				return string(out)
			}
		}
	}
	if utf8.Valid(body) {
		return string(body)
	}
	return strings.ToValidUTF8(string(body), "\uFFFD")
}

// decodeHeader decodes RFC 2047 encoded-words in any charset the WHATWG index knows, and returns the
// value unchanged if it cannot.
func decodeHeader(v string) string {
	d := mime.WordDecoder{CharsetReader: func(charset string, input io.Reader) (io.Reader, error) {
		enc, err := htmlindex.Get(charset)
		if err != nil {
			return nil, fmt.Errorf("decode charset %q: %w", charset, err)
		}
		return enc.NewDecoder().Reader(input), nil
	}}
	out, err := d.DecodeHeader(v)
	if err != nil {
		out = v
	}
	return strings.ToValidUTF8(unfold(out), "\uFFFD")
}

// senderAddress returns the bare address of a From value, or the first address-shaped text in it.
func senderAddress(v string) string {
	if a, err := mail.ParseAddress(v); err == nil {
		return a.Address
	}
	if list, err := mail.ParseAddressList(v); err == nil && len(list) > 0 {
		return list[0].Address
	}
	return addressPattern.FindString(v)
}

// orderedHeaders reads the header section of a message (up to the first empty line) in order, unfolding
// continuation lines, because net/mail's map loses the order Graph's internetMessageHeaders keep.
func orderedHeaders(raw []byte) []Header {
	var hs []Header
	var folded []string // continuation lines of the last header, joined once it ends
	flush := func() {
		if len(folded) > 0 {
			last := &hs[len(hs)-1]
			last.Value = strings.TrimSpace(last.Value + " " + strings.Join(folded, " "))
			folded = folded[:0]
		}
	}
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			break
		}
		if (line[0] == ' ' || line[0] == '\t') && len(hs) > 0 {
			folded = append(folded, strings.ToValidUTF8(strings.TrimSpace(string(line)), "\uFFFD"))
			continue
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || len(bytes.TrimSpace(name)) == 0 {
			continue
		}
		flush()
		hs = append(hs, Header{
			Name:  strings.ToValidUTF8(strings.TrimSpace(string(name)), "\uFFFD"),
			Value: strings.ToValidUTF8(strings.TrimSpace(string(value)), "\uFFFD"),
		})
	}
	flush()
	return hs
}
