package delivery

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/engage-email/engage/followed"
)

// OutboxEntry is one mail in the local outbox, which stands in for Exchange when no tenant is
// configured: a draft until sent, then listed for anyone on this machine to open as its recipient would.
type OutboxEntry struct {
	ID                string
	From              string
	To, Cc, Bcc       []Address
	Subject, HTML     string
	Headers           map[string]string
	InternetMessageID string
	ConversationID    string
	CreatedAt         time.Time
	SentAt            time.Time // zero while a draft
}

// MessageID is the Engage message the entry renders, from its header.
func (e OutboxEntry) MessageID() string { return e.Headers[HeaderMessageID] }

// OutboxQuery selects sent outbox entries, newest first.
type OutboxQuery struct {
	From  string // "" = every sender
	Limit int
}

// OutboxStore keeps the local outbox.
type OutboxStore interface {
	// AddOutboxDraft stores a new, unsent entry.
	AddOutboxDraft(ctx context.Context, e OutboxEntry) error
	// MarkOutboxSent sets an unsent entry's SentAt; followed.ErrNotFound when there is no such entry,
	// ErrJobState when it was sent already.
	MarkOutboxSent(ctx context.Context, id string, at time.Time) error
	// OutboxEntry returns an entry, sent or not, or followed.ErrNotFound.
	OutboxEntry(ctx context.Context, id string) (OutboxEntry, error)
	// OutboxEntries lists sent entries newest first.
	OutboxEntries(ctx context.Context, q OutboxQuery) ([]OutboxEntry, error)
}

// Outbox is the Mailer of local mode: drafts and sent mail are kept in the store instead of a mailbox.
type Outbox struct {
	store OutboxStore
	now   func() time.Time
}

// NewOutbox returns the local outbox over store.
func NewOutbox(store OutboxStore, now func() time.Time) *Outbox {
	if now == nil {
		now = time.Now
	}
	return &Outbox{store: store, now: now}
}

var _ Mailer = (*Outbox)(nil)

// CreateDraft implements Mailer; the ids look like Exchange's so that replies could be matched alike.
func (o *Outbox) CreateDraft(ctx context.Context, from Sender, d Draft) (DraftRef, error) {
	if len(d.To)+len(d.Cc)+len(d.Bcc) == 0 {
		return DraftRef{}, &PermanentError{Reason: "The message has no recipient.", Err: errors.New("outbox: draft without recipients")}
	}
	now := o.now().UTC().Truncate(time.Millisecond)
	id := followed.NewID(now)
	domain := "engage.local"
	if _, d, ok := strings.Cut(from.Mailbox, "@"); ok && d != "" {
		domain = d
	}
	e := OutboxEntry{ID: id, From: from.Mailbox, To: d.To, Cc: d.Cc, Bcc: d.Bcc, Subject: d.Subject, HTML: d.HTML,
		Headers: d.Headers, InternetMessageID: "<" + id + "@" + domain + ">", ConversationID: "conv-" + id, CreatedAt: now}
	if err := o.store.AddOutboxDraft(ctx, e); err != nil {
		return DraftRef{}, fmt.Errorf("outbox: save draft: %w", err)
	}
	return DraftRef{ID: e.ID, InternetMessageID: e.InternetMessageID, ConversationID: e.ConversationID}, nil
}

// SendDraft implements Mailer.
func (o *Outbox) SendDraft(ctx context.Context, from Sender, draftID string) error {
	e, err := o.store.OutboxEntry(ctx, draftID)
	if err != nil {
		return fmt.Errorf("outbox: send %s: %w", draftID, err)
	}
	if e.From != from.Mailbox {
		return &PermanentError{Reason: "The draft is in another mailbox.", Err: fmt.Errorf("outbox: draft %s belongs to %s", draftID, e.From)}
	}
	if err := o.store.MarkOutboxSent(ctx, draftID, o.now().UTC().Truncate(time.Millisecond)); err != nil {
		return fmt.Errorf("outbox: send %s: %w", draftID, err)
	}
	return nil
}

// DraftExists implements Mailer.
func (o *Outbox) DraftExists(ctx context.Context, from Sender, draftID string) (bool, error) {
	e, err := o.store.OutboxEntry(ctx, draftID)
	if errors.Is(err, followed.ErrNotFound) || (err == nil && e.From != from.Mailbox) {
		return false, fmt.Errorf("outbox: draft %s: %w", draftID, ErrDraftGone)
	}
	if err != nil {
		return false, fmt.Errorf("outbox: draft %s: %w", draftID, err)
	}
	return e.SentAt.IsZero(), nil
}

// Entries lists sent mail newest first (from one sender when from is set), at most limit (default 50, at most 500).
func (o *Outbox) Entries(ctx context.Context, from string, limit int) ([]OutboxEntry, error) {
	if limit <= 0 {
		limit = 50
	}
	es, err := o.store.OutboxEntries(ctx, OutboxQuery{From: from, Limit: min(limit, 500)})
	if err != nil {
		return nil, fmt.Errorf("outbox: list: %w", err)
	}
	return es, nil
}

// Entry returns one sent mail; drafts and unknown ids are followed.ErrNotFound.
func (o *Outbox) Entry(ctx context.Context, id string) (OutboxEntry, error) {
	e, err := o.store.OutboxEntry(ctx, id)
	if err == nil && e.SentAt.IsZero() {
		err = followed.ErrNotFound
	}
	if err != nil {
		return OutboxEntry{}, fmt.Errorf("outbox: entry %s: %w", id, err)
	}
	return e, nil
}
