package delivery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/engage-email/engage/consent"
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
	Files             []OutboxFile // attached to the mail itself, in the order attached
	CreatedAt         time.Time
	SentAt            time.Time // zero while a draft
}

// OutboxFile is a file an outbox mail carries; its content stays in the attachment store.
type OutboxFile struct {
	AttachmentID, Name, ContentType string
	Size                            int64
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
	for _, f := range d.Attachments {
		// As Exchange reads every file it is given, a file that cannot be read fails the draft.
		if err := readable(ctx, f); err != nil {
			return DraftRef{}, err
		}
		e.Files = append(e.Files, OutboxFile{AttachmentID: f.AttachmentID, Name: f.Name, ContentType: f.ContentType, Size: f.Size})
	}
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

// readable checks that f opens.
func readable(ctx context.Context, f File) error {
	if f.Open == nil || f.Name == "" {
		return &PermanentError{Reason: "An attachment of the message has no content.", Err: fmt.Errorf("outbox: file %q cannot be opened", f.Name)}
	}
	rc, err := f.Open(ctx)
	if err != nil {
		return fmt.Errorf("outbox: open %s: %w", f.Name, err)
	}
	return rc.Close()
}

// File opens the n-th file (from 0) of a sent mail from files, the attachment store it was sent from;
// an unknown mail or index, or a file since removed (its message erased), is followed.ErrNotFound.
func (o *Outbox) File(ctx context.Context, files Files, entryID string, n int) (OutboxFile, io.ReadCloser, error) {
	e, err := o.Entry(ctx, entryID)
	if err != nil {
		return OutboxFile{}, nil, err
	}
	if n < 0 || n >= len(e.Files) || files == nil {
		return OutboxFile{}, nil, fmt.Errorf("outbox: file %d of %s: %w", n, entryID, followed.ErrNotFound)
	}
	f := e.Files[n]
	as, err := files.Direct(ctx, e.MessageID(), false)
	if err != nil {
		return OutboxFile{}, nil, fmt.Errorf("outbox: file %d of %s: %w", n, entryID, err)
	}
	for _, a := range as {
		if a.ID == f.AttachmentID {
			rc, err := files.Content(ctx, a)
			if err != nil {
				return OutboxFile{}, nil, fmt.Errorf("outbox: file %d of %s: %w", n, entryID, err)
			}
			return f, rc, nil
		}
	}
	return OutboxFile{}, nil, fmt.Errorf("outbox: file %d of %s is no longer kept: %w", n, entryID, followed.ErrNotFound)
}

// ForgetRecipient takes email (any case) out of the entry for an erasure: each of its places among the
// recipients gets a placeholder, so the mail still shows how many it went to, and when the mail went to
// that address alone its body goes too, as it was the person's own copy. It reports whether the entry
// named the address.
func (e *OutboxEntry) ForgetRecipient(email string) bool {
	found, n := false, 0
	for _, list := range [][]Address{e.To, e.Cc, e.Bcc} {
		for i := range list {
			if strings.EqualFold(strings.TrimSpace(list[i].Email), email) {
				list[i] = Address{Email: "erased-" + strconv.Itoa(n) + "@erased.invalid"}
				found = true
			}
			n++
		}
	}
	if !found {
		return false
	}
	alone := true
	for _, list := range [][]Address{e.To, e.Cc, e.Bcc} {
		for _, a := range list {
			if !strings.HasSuffix(a.Email, "@erased.invalid") {
				alone = false
			}
		}
	}
	if alone {
		e.HTML = ""
	}
	return true
}

// OutboxRecords describes, for a person's data request, the outbox mails among es that name email.
func OutboxRecords(es []OutboxEntry, email string) []consent.Record {
	var out []consent.Record
	for _, e := range es {
		for _, h := range []struct {
			header string
			list   []Address
		}{{"to", e.To}, {"cc", e.Cc}, {"bcc", e.Bcc}} {
			for _, a := range h.list {
				if !strings.EqualFold(strings.TrimSpace(a.Email), email) {
					continue
				}
				at := e.SentAt
				if at.IsZero() {
					at = e.CreatedAt
				}
				out = append(out, consent.Record{Source: "delivery", Kind: "outbox", ID: e.ID, At: at,
					Fields: map[string]string{"email": a.Email, "name": a.Name, "header": h.header, "sender": e.From,
						"subject": e.Subject, "message": e.MessageID()}})
			}
		}
	}
	return out
}
