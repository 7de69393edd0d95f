// Package delivery sends followed messages from the salesperson's own mailbox, now or at a chosen time:
// persisted jobs, a worker that claims due jobs under a lease so two instances never both send, and a
// per-render record that makes a crash between "draft created" and "sent" resume without sending twice.
package delivery

import (
	"errors"
	"fmt"
	"time"
)

// Status is where a message stands on its way to the recipients.
type Status string

// The statuses a message goes through; DRAFT means no send was asked for (or a scheduled one was cancelled).
const (
	StatusDraft     Status = "DRAFT"
	StatusScheduled Status = "SCHEDULED"
	StatusSending   Status = "SENDING"
	StatusSent      Status = "SENT"
	StatusFailed    Status = "FAILED"
)

// Job is the persisted request to send one message: a worker claims it when due and settles it.
type Job struct {
	MessageID   string
	Owner       string // the mailbox it is sent from
	Status      Status
	ScheduledAt time.Time // the time the salesperson chose; zero for "send now"
	DueAt       time.Time // when a worker may next take it (ScheduledAt, or later when retrying)
	Attempts    int       // how many times it was claimed
	Reason      string    // why it failed, or why the last try did not go through; safe to show the salesperson
	LeaseOwner  string
	LeaseUntil  time.Time
	CreatedAt   time.Time
	SentAt      time.Time
}

// RenderSend is what happened to one render of a message in the sender's mailbox: the ids Microsoft 365
// gave its draft (kept before sending, so a resumed job checks the draft instead of drafting again) and
// when it was sent. Replies are matched on InternetMessageID and ConversationID.
type RenderSend struct {
	MessageID         string
	Render            int
	DraftID           string
	InternetMessageID string
	ConversationID    string
	SentAt            time.Time
}

// ErrLeaseLost means another instance took over a job whose lease ran out, so this one must stop.
var ErrLeaseLost = errors.New("delivery: job lease lost")

// ErrJobExists means the message already has a job that is not FAILED: it was sent or is on its way.
var ErrJobExists = errors.New("delivery: message already has a send")

// ErrJobState means the job is not in a state that allows the change (being sent, sent, partly sent).
var ErrJobState = errors.New("delivery: job not in a state that allows this")

// ErrDraftGone means a recorded draft is no longer in the mailbox (the salesperson deleted it).
var ErrDraftGone = errors.New("delivery: draft no longer in the mailbox")

// PermanentError is a refusal that trying again will not change (a missing Mail.Send permission, an
// unknown mailbox); Reason is written for the salesperson.
type PermanentError struct {
	Reason string
	Err    error
}

func (e *PermanentError) Error() string { return fmt.Sprintf("delivery: %s: %v", e.Reason, e.Err) }
func (e *PermanentError) Unwrap() error { return e.Err }

// RetryError is a temporary refusal (throttling, an unavailable service); After is the wait the service
// asked for, zero when it named none.
type RetryError struct {
	After time.Duration
	Err   error
}

func (e *RetryError) Error() string {
	if e.After > 0 {
		return fmt.Sprintf("delivery: retry after %s: %v", e.After, e.Err)
	}
	return fmt.Sprintf("delivery: retry later: %v", e.Err)
}
func (e *RetryError) Unwrap() error { return e.Err }
