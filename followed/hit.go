package followed

import (
	"net"
	"time"
	"unicode/utf8"

	"github.com/engage-email/engage/machines"
)

// Hit is a tracking request as the server saw it, after the token was verified.
type Hit struct {
	Token     Token
	At        time.Time
	IP        string
	UserAgent string
	Method    string
	IPStorage IPStorage // how much of IP to keep; "" keeps it whole
}

// IPStorage is how much of a client's address is stored with its events, an admin's choice.
type IPStorage string

// The client address storage policies.
const (
	IPFull      IPStorage = "FULL"      // as seen
	IPTruncated IPStorage = "TRUNCATED" // IPv4 to its /24, IPv6 to its /48: the network, not the device
	IPNone      IPStorage = "NONE"      // nothing
)

// Apply returns what of ip this policy keeps.
func (p IPStorage) Apply(ip string) string {
	switch p {
	case IPNone:
		return ""
	case IPTruncated:
		parsed := net.ParseIP(ip)
		if parsed == nil {
			return "" // not an address: keeping it could keep more than the policy allows
		}
		if v4 := parsed.To4(); v4 != nil {
			return v4.Mask(net.CIDRMask(24, 32)).String()
		}
		return parsed.Mask(net.CIDRMask(48, 128)).String()
	}
	return ip
}

// MaxUserAgent bounds the user agent an event keeps. Real agents are a few hundred bytes; a hostile
// one, up to the request's header limit, would fill the store and could make an event too large to
// spool while the store is down.
const MaxUserAgent = 1024

// clip returns s cut to at most n bytes, on a character boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Event turns a hit into the event to store, with a fresh id so that a replay is recognised.
func (h Hit) Event(devices *DeviceParser) Event {
	ev := Event{
		ID:        NewID(h.At),
		MessageID: h.Token.MessageID,
		At:        h.At.UTC(),
		Recipient: h.Token.Recipient,
		Link:      -1,
		IP:        h.IPStorage.Apply(h.IP),
		UserAgent: clip(h.UserAgent, MaxUserAgent),
		Method:    h.Method,
		Device:    devices.Parse(h.UserAgent),
	}
	switch h.Token.Kind {
	case TokenOpen:
		ev.Kind = Opened
	case TokenAttachment:
		ev.Kind = AttachmentOpened
		ev.Link, ev.URL = h.Token.Link, h.Token.URL
	case TokenHoneypot:
		// Only machines follow the invisible link: a scanner's click on no link of the message, so it
		// never counts as one, whoever labels it.
		ev.Kind, ev.URL = LinkClicked, h.Token.URL
		ev.Machine, ev.Reason, ev.Rule = true, string(machines.ReasonScanner), machines.RuleHoneypot
	default:
		ev.Kind = LinkClicked
		ev.Link, ev.URL = h.Token.Link, h.Token.URL
	}
	return ev
}
