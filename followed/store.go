package followed

import (
	"context"
	"time"
)

// Store is what followed needs from a backend. Every method is atomic: a message is written whole or
// not at all, and a batch of events with the counters it moves commits together.
type Store interface {
	// CreateMessage stores a message with its recipients, renders and links.
	CreateMessage(ctx context.Context, m Message) error
	// Message returns the message with its counters and links, or ErrNotFound.
	Message(ctx context.Context, id string) (Message, error)
	// UpdateRenders replaces a message's following state, reason, warnings, renders and links at once,
	// keeping its counters and the counters of links it still has; ErrNotFound when absent, and
	// ErrSendStarted, changing nothing, once its send has started (SendStarted, in the same transaction).
	UpdateRenders(ctx context.Context, m Message) error
	// Renders returns a message's renders in order.
	Renders(ctx context.Context, messageID string) ([]Render, error)
	// Messages lists messages newest first, with recipients, links and counters but not renders.
	Messages(ctx context.Context, q MessageQuery) ([]Message, error)
	// RecordEvents stores a batch, ignoring ids already stored, events of messages since erased and
	// tracking events (Event.Tracking) of recipients who withdrew consent after the message was sent
	// (consent.Store.AddPreferences) or were erased, moves the counters, and returns the human opens that
	// were the first for their message and recipient.
	RecordEvents(ctx context.Context, evs []Event) ([]FirstOpen, error)
	// Events lists a message's events newest first.
	Events(ctx context.Context, q EventQuery) ([]Event, error)
	// Relabel marks the named events as a machine's, each with its reason and rule, and moves what
	// they had counted as a person's, atomically: opens become machine opens and clicks machine clicks
	// (per-link clicks too), attachment opens stop counting, and the first-open and unique counts of
	// the messages and recipients concerned are worked out again from the person's events that remain
	// (an audience entry whose first event is relabelled passes to the next person's event of that
	// recipient, or goes, lowering the unique count; one whose event was purged by retention stays).
	// Events already labelled machine, replies and unknown ids (erased, or not yet stored) are left
	// alone; an entry without an id or reason is ErrBadInput, and then nothing is written.
	Relabel(ctx context.Context, rs []Relabel) error
	// Summary adds up the counters of the messages created in [From, To).
	Summary(ctx context.Context, q SummaryQuery) (Summary, error)
	// SendStarted tells whether the message is being sent or was sent (even in part).
	SendStarted(ctx context.Context, messageID string) (bool, error)
}

// MessageQuery selects messages; empty fields do not filter.
type MessageQuery struct {
	Owner     string // "" = every owner (admins)
	From, To  time.Time
	Following *bool
	Search    string // in the subject or a recipient's address
	After     *Cursor
	Limit     int
}

// EventQuery pages through a message's events.
type EventQuery struct {
	MessageID string
	After     *Cursor
	Limit     int
}

// Cursor is a position in a newest-first listing.
type Cursor struct {
	At time.Time
	ID string
}

// SummaryQuery selects the messages a summary covers.
type SummaryQuery struct {
	Owner    string // "" = the whole organisation
	From, To time.Time
}

// Summary is the engagement of many messages at once (seed 003's glossary).
type Summary struct {
	FollowedEmails  int
	OpenedEmails    int
	ClickedEmails   int
	RepliedEmails   int
	Opens           int
	Clicks          int
	AttachmentOpens int
	Replies         int
	// MedianTimeToFirstOpen is over the opened messages; zero when none was opened.
	MedianTimeToFirstOpen time.Duration
}

// OpenRate is the share of followed emails opened at least once.
func (s Summary) OpenRate() float64 { return ratio(s.OpenedEmails, s.FollowedEmails) }

// ClickRate is the share of followed emails with at least one click.
func (s Summary) ClickRate() float64 { return ratio(s.ClickedEmails, s.FollowedEmails) }

// ReplyRate is the share of followed emails that got a reply.
func (s Summary) ReplyRate() float64 { return ratio(s.RepliedEmails, s.FollowedEmails) }

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
