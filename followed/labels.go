package followed

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"
)

// Relabel names a stored event that later evidence showed to be a machine's, and the label it gets.
// Relabelling only ever turns a person's event into a machine's: a backend flips the event and moves
// the counters it had moved (opens to machine opens, clicks to machine clicks, link and unique
// counts), all in one transaction.
type Relabel struct {
	EventID string
	Reason  string // APPLE_PRIVACY_PROXY, SECURITY_SCANNER or PREFETCH
	Rule    string // the rule that decided, e.g. "honeypot-visitor"
}

// check says why a relabel cannot be applied.
func (r Relabel) check() error {
	switch {
	case r.EventID == "":
		return fmt.Errorf("%w: relabel without an event id", ErrBadInput)
	case r.Reason == "":
		return fmt.Errorf("%w: relabel of event %s without a reason", ErrBadInput, r.EventID)
	}
	return nil
}

// CheckRelabels validates a batch before a backend writes any of it, so a bad entry writes nothing.
func CheckRelabels(rs []Relabel) error {
	for _, r := range rs {
		if err := r.check(); err != nil {
			return err
		}
	}
	return nil
}

// EarlyOpenQuery pages, oldest first, through the settled person's opens that came close to their
// message's send time: the candidates for a prefetch.
type EarlyOpenQuery struct {
	After  *Cursor       // exclusive; nil starts at the beginning
	Before time.Time     // opens at or after it have not settled yet
	Within time.Duration // how far from the send time (either side) an open may be
	Limit  int
}

// EarlyOpen is an open that may have been a prefetch, with what the prefetch rule needs to decide.
type EarlyOpen struct {
	Event  Event
	SentAt time.Time // the delivery's send time, else the message's creation
	// LastActivity is the latest event of the same message and recipient after this open that is not
	// labelled machine (a person's, or a person behind a proxy), auto-replies and bounces aside (their
	// mail system's, not theirs); the open's own time when they acted before it other than by opening
	// (they clicked, then loaded the images); zero when there is none.
	LastActivity time.Time
}

// LabelStore is what machine labelling needs from a backend: send times for the hot path's cache,
// the prefetch candidates, and Relabel.
type LabelStore interface {
	// SentTimes returns, for the ids among messageIDs whose delivery recorded a send time, that time;
	// messages not sent through delivery (or unknown) are absent, and callers use their creation time.
	SentTimes(ctx context.Context, messageIDs []string) (map[string]time.Time, error)
	// EarlyOpens lists, oldest first by (at, id), the opens labelled neither machine nor with any
	// reason, recorded in (After, Before), within Within of their message's send time (the delivery's
	// send time, else the message's creation), at most Limit.
	EarlyOpens(ctx context.Context, q EarlyOpenQuery) ([]EarlyOpen, error)
	// Relabel is Store.Relabel.
	Relabel(ctx context.Context, rs []Relabel) error
}

// IDTime returns the creation time a message id made by NewID carries, so the hot path knows when a
// message was created without reading the store; ok is false for ids NewID did not make.
func IDTime(id string) (at time.Time, ok bool) {
	if len(id) != idEncoding.EncodedLen(16) {
		return time.Time{}, false
	}
	var b [16]byte
	if n, err := idEncoding.Decode(b[:], []byte(id)); err != nil || n != 16 {
		return time.Time{}, false
	}
	return time.UnixMilli(int64(binary.BigEndian.Uint64(b[:8]) >> 16)).UTC(), true
}
