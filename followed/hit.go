package followed

import "time"

// Hit is a tracking request as the server saw it, after the token was verified.
type Hit struct {
	Token     Token
	At        time.Time
	IP        string
	UserAgent string
	Method    string
}

// Event turns a hit into the event to store, with a fresh id so that a replay is recognised.
func (h Hit) Event(devices *DeviceParser) Event {
	ev := Event{
		ID:        NewID(h.At),
		MessageID: h.Token.MessageID,
		At:        h.At.UTC(),
		Recipient: h.Token.Recipient,
		Link:      -1,
		IP:        h.IP,
		UserAgent: h.UserAgent,
		Method:    h.Method,
		Device:    devices.Parse(h.UserAgent),
	}
	switch h.Token.Kind {
	case TokenOpen:
		ev.Kind = Opened
	case TokenAttachment:
		ev.Kind = AttachmentOpened
		ev.Link, ev.URL = h.Token.Link, h.Token.URL
	default:
		ev.Kind = LinkClicked
		ev.Link, ev.URL = h.Token.Link, h.Token.URL
	}
	return ev
}
