// Package alerts tells salespeople, live, that something happened to a message they follow: the first
// open, a follow-up reminder falling due, a reply, and (when they ask for them) clicks and attachment
// opens. Alerts are stored with a sequence number, so every instance can tail them and every client
// can resume from its last cursor.
package alerts

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/engage-email/engage/followed"
)

// Kind is what an alert reports.
type Kind string

// The alert kinds; LINK_CLICKED and ATTACHMENT_OPENED are off until the salesperson turns them on.
const (
	FirstOpen        Kind = "FIRST_OPEN"
	ReminderDue      Kind = "REMINDER"
	ReplyReceived    Kind = "REPLY_RECEIVED"
	LinkClicked      Kind = "LINK_CLICKED"
	AttachmentOpened Kind = "ATTACHMENT_OPENED"
	WebhookDisabled  Kind = "WEBHOOK_DISABLED" // to admins: a response-feed webhook failed for a day and was switched off
	// Withdrawn takes back a FIRST_OPEN, LINK_CLICKED or ATTACHMENT_OPENED alert whose event later
	// evidence showed to be a machine's (Apple's prefetch, a link scanner): nobody should act on it.
	Withdrawn Kind = "ALERT_WITHDRAWN"
)

// Condition is when a follow-up reminder fires, as in Dynamics' "Set an alert to remind you".
type Condition string

// The reminder conditions: fire unless a reply arrived, fire unless the message was opened, or fire anyway.
const (
	NoReplyBy   Condition = "NO_REPLY_BY"
	NotOpenedBy Condition = "NOT_OPENED_BY"
	Anyway      Condition = "ANYWAY"
)

// Valid reports whether c is one of the three conditions.
func (c Condition) Valid() bool { return c == NoReplyBy || c == NotOpenedBy || c == Anyway }

// State is where a reminder is in its life.
type State string

// The reminder states: waiting, fired an alert, passed over because its condition was met, or cancelled.
const (
	Pending   State = "PENDING"
	Fired     State = "FIRED"
	Skipped   State = "SKIPPED"
	Cancelled State = "CANCELLED"
)

// Alert is one stored alert. Seq orders all alerts of all owners and never goes backwards, which is
// what lets instances tail the store and clients resume from a cursor.
type Alert struct {
	Seq       int64
	ID        string
	Key       string // unique per fact (e.g. first open of a message and recipient): stored once however often reported
	Owner     string
	Kind      Kind
	At        time.Time // when it happened (the open, the click, the reminder's due time)
	MessageID string
	Subject   string
	Recipient string // the recipient's address when known
	Device    followed.Device
	URL       string    // the link clicked or attachment opened
	Reminder  string    // the reminder's id, for REMINDER
	Condition Condition // the reminder's condition, for REMINDER
	ReadAt    time.Time // zero while unread
	Withdraws string    // for ALERT_WITHDRAWN: the id of the alert taken back
	Machine   string    // for ALERT_WITHDRAWN: why its event was a machine's (PREFETCH, SECURITY_SCANNER...)
}

// Cursor is the alert's position for `since` and `after` arguments.
func (a Alert) Cursor() string { return EncodeCursor(a.Seq) }

// Reminder is a follow-up reminder a salesperson set on one of their messages.
type Reminder struct {
	ID        string
	Owner     string
	MessageID string
	Subject   string
	Condition Condition
	DueAt     time.Time
	CreatedAt time.Time
	State     State
	Reason    string    // why it was skipped: REPLIED or OPENED
	DoneAt    time.Time // when it fired, was skipped or cancelled
}

// Preferences are the alert kinds a salesperson wants; the zero value is not the default, DefaultPreferences is.
type Preferences struct {
	FirstOpen        bool
	ReplyReceived    bool
	LinkClicked      bool
	AttachmentOpened bool
	// FirstOpenSince is when first-open alerts were last switched on; zero when never off. An open
	// before it came while they were off: it was not wanted, and is not alerted late.
	FirstOpenSince time.Time
}

// DefaultPreferences is what a salesperson gets before choosing: first opens and replies, no clicks.
var DefaultPreferences = Preferences{FirstOpen: true, ReplyReceived: true}

// Wants reports whether the preferences let an alert of kind k through; reminders always pass,
// since the salesperson set them one by one.
func (p Preferences) Wants(k Kind) bool {
	switch k {
	case FirstOpen:
		return p.FirstOpen
	case ReplyReceived:
		return p.ReplyReceived
	case LinkClicked:
		return p.LinkClicked
	case AttachmentOpened:
		return p.AttachmentOpened
	}
	return true
}

// ErrLeaseLost means another instance took over a reminder whose lease had expired, so this one must
// not fire it.
var ErrLeaseLost = errors.New("alerts: reminder lease lost")

const cursorPrefix = "alert:"

// EncodeCursor turns a sequence number into an opaque cursor.
func EncodeCursor(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + strconv.FormatInt(seq, 10)))
}

// DecodeCursor reads a cursor made by EncodeCursor; anything else is a caller's mistake (ErrBadInput).
func DecodeCursor(s string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || !strings.HasPrefix(string(b), cursorPrefix) {
		return 0, fmt.Errorf("%w: %q is not an alert cursor", followed.ErrBadInput, s)
	}
	digits := strings.TrimPrefix(string(b), cursorPrefix)
	seq, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || seq < 0 || strconv.FormatInt(seq, 10) != digits {
		return 0, fmt.Errorf("%w: %q is not an alert cursor", followed.ErrBadInput, s)
	}
	return seq, nil
}
