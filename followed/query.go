package followed

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/engage-email/engage/auth"
)

// MaxPage caps a page of a listing.
const MaxPage = 100

// Message returns a message the caller may see: their own, or any for an admin.
func (s *Service) Message(ctx context.Context, who auth.Identity, id string) (Message, error) {
	m, err := s.store.Message(ctx, id)
	if err != nil {
		return Message{}, fmt.Errorf("followed: message %s: %w", id, err)
	}
	if m.Owner != who.Email && !who.Admin {
		return Message{}, fmt.Errorf("followed: message %s: %w", id, ErrNotFound)
	}
	return m, nil
}

// Filter selects messages in a listing.
type Filter struct {
	From, To  time.Time
	Following *bool
	Search    string
}

// MessagePage is one page of messages with the cursor of each.
type MessagePage struct {
	Messages []Message
	Cursors  []string
	HasNext  bool
}

// Messages lists the caller's messages (an admin's listing covers everyone's), newest first.
func (s *Service) Messages(ctx context.Context, who auth.Identity, f Filter, first int, after string) (MessagePage, error) {
	limit, cur, err := pageArgs(first, after)
	if err != nil {
		return MessagePage{}, err
	}
	q := MessageQuery{Owner: who.Email, From: f.From, To: f.To, Following: f.Following,
		Search: strings.TrimSpace(f.Search), After: cur, Limit: limit + 1}
	if who.Admin {
		q.Owner = ""
	}
	ms, err := s.store.Messages(ctx, q)
	if err != nil {
		return MessagePage{}, fmt.Errorf("followed: list messages: %w", err)
	}
	p := MessagePage{HasNext: len(ms) > limit}
	if p.HasNext {
		ms = ms[:limit]
	}
	p.Messages = ms
	for _, m := range ms {
		p.Cursors = append(p.Cursors, encodeCursor(Cursor{At: m.CreatedAt, ID: m.ID}))
	}
	return p, nil
}

// EventPage is one page of a message's interactions.
type EventPage struct {
	Events  []Event
	Cursors []string
	HasNext bool
}

// Interactions pages through the events of a message the caller may see, newest first.
func (s *Service) Interactions(ctx context.Context, who auth.Identity, messageID string, first int, after string) (EventPage, error) {
	if _, err := s.Message(ctx, who, messageID); err != nil {
		return EventPage{}, err
	}
	limit, cur, err := pageArgs(first, after)
	if err != nil {
		return EventPage{}, err
	}
	evs, err := s.store.Events(ctx, EventQuery{MessageID: messageID, After: cur, Limit: limit + 1})
	if err != nil {
		return EventPage{}, fmt.Errorf("followed: interactions of %s: %w", messageID, err)
	}
	p := EventPage{HasNext: len(evs) > limit}
	if p.HasNext {
		evs = evs[:limit]
	}
	p.Events = evs
	for _, e := range evs {
		p.Cursors = append(p.Cursors, encodeCursor(Cursor{At: e.At, ID: e.ID}))
	}
	return p, nil
}

// Summary adds up engagement over the messages created in [from, to): the caller's own, or with org
// the whole organisation's, which only admins may see.
func (s *Service) Summary(ctx context.Context, who auth.Identity, from, to time.Time, org bool) (Summary, error) {
	if org && !who.Admin {
		return Summary{}, fmt.Errorf("followed: %w", auth.Deny("the organisation summary needs an admin"))
	}
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		return Summary{}, fmt.Errorf("%w: from must be before to", ErrBadInput)
	}
	q := SummaryQuery{Owner: who.Email, From: from, To: to}
	if org {
		q.Owner = ""
	}
	sum, err := s.store.Summary(ctx, q)
	if err != nil {
		return Summary{}, fmt.Errorf("followed: summary: %w", err)
	}
	return sum, nil
}

func pageArgs(first int, after string) (int, *Cursor, error) {
	switch {
	case first < 0:
		return 0, nil, fmt.Errorf("%w: first must not be negative", ErrBadInput)
	case first == 0:
		first = 20
	case first > MaxPage:
		first = MaxPage
	}
	if after == "" {
		return first, nil, nil
	}
	c, err := decodeCursor(after)
	if err != nil {
		return 0, nil, err
	}
	return first, &c, nil
}

var errBadCursor = errors.New("not a cursor from this listing")

func encodeCursor(c Cursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.At.UnixNano(), 36) + "." + c.ID))
}

func decodeCursor(s string) (Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, fmt.Errorf("%w: cursor %q: %w", ErrBadInput, s, errBadCursor)
	}
	at, id, ok := strings.Cut(string(b), ".")
	n, err := strconv.ParseInt(at, 36, 64)
	if !ok || err != nil || id == "" {
		return Cursor{}, fmt.Errorf("%w: cursor %q: %w", ErrBadInput, s, errBadCursor)
	}
	return Cursor{At: time.Unix(0, n).UTC(), ID: id}, nil
}
