package followed

import (
	"time"
)

// EventKind is what a recipient did.
type EventKind string

// The event kinds; REPLIED and its kin arrive from the sender's mailbox.
const (
	Opened           EventKind = "OPENED"
	LinkClicked      EventKind = "LINK_CLICKED"
	AttachmentOpened EventKind = "ATTACHMENT_OPENED"
	Replied          EventKind = "REPLIED"
	AutoReplied      EventKind = "AUTO_REPLIED"
	Bounced          EventKind = "BOUNCED"
	Unsubscribed     EventKind = "UNSUBSCRIBED" // the recipient used the opt-out link (feed package)
)

// Event is one recorded interaction. Its ID is chosen when the hit arrives, so replaying a spooled
// event never stores it twice.
type Event struct {
	ID        string
	MessageID string
	Kind      EventKind
	At        time.Time
	Recipient int // index into the message's recipients, or Shared
	Link      int // link or attachment index for clicks; -1 otherwise
	URL       string
	IP        string
	UserAgent string
	Method    string
	Device    Device
	Machine   bool
	Reason    string // why it is labelled machine (or PROXIED for a person behind a proxy)
	Rule      string // the rule that decided the label
}

// Tracking reports whether the event came from tracking (the pixel, a tracked link or attachment)
// rather than from the mailbox or the recipient's own choice: what consent governs.
func (e Event) Tracking() bool {
	return e.Kind == Opened || e.Kind == LinkClicked || e.Kind == AttachmentOpened
}

// FirstOpen is a human open that was the first for its message (per recipient for individual renders),
// decided atomically by the store however many hits race.
type FirstOpen struct {
	MessageID string
	Owner     string
	Subject   string
	Recipient int
	Email     string // the recipient's address when the render was individual
	At        time.Time
	Device    Device
}
