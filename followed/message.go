package followed

import (
	"errors"
	"fmt"
	"time"
)

// ErrNotFound means no such message, or one the caller may not see: the two answer alike so that
// ids of other salespeople's messages cannot be probed.
var ErrNotFound = errors.New("followed: not found")

// ErrBadInput marks a caller's mistake; the message it wraps is safe to show them.
var ErrBadInput = errors.New("bad input")

// ErrSendStarted means a message's send has begun (or is over): mail that went out as it was cannot
// be followed, or its renders changed, after the fact.
var ErrSendStarted = fmt.Errorf("%w: the message was sent (or is being sent) as it was, and cannot be followed now", ErrBadInput)

// RecipientKind is the header a recipient is addressed in.
type RecipientKind string

// The recipient kinds, as in the To, Cc and Bcc headers.
const (
	KindTo  RecipientKind = "TO"
	KindCc  RecipientKind = "CC"
	KindBcc RecipientKind = "BCC"
)

// Recipient is one addressee of a message.
type Recipient struct {
	Email string
	Name  string
	Kind  RecipientKind
}

// Shared is the recipient index of a render sent to everyone alike, whose opens name no person.
const Shared = -1

// Render is the HTML one group of recipients receives: with individual sending, one per recipient.
type Render struct {
	Index     int   // position in Message.Renders
	Recipient int   // index into Message.Recipients, or Shared
	Targets   []int // indexes into Message.Recipients who receive this render
	HTML      string
	Tracked   bool
}

// Counters are a message's KPIs, kept up to date as events arrive so that no read scans events.
type Counters struct {
	Opens           int // [OpenCount]: human opens
	UniqueOpens     int // distinct recipients (the shared render counts as one) who opened
	FirstOpenedAt   time.Time
	LastOpenedAt    time.Time // [LastOpenedTime]
	Clicks          int       // [LinksClickedCount]
	UniqueClicks    int       // distinct recipients who clicked any link
	AttachmentOpens int       // [AttachmentOpenCount]
	Replies         int       // [TotalEmailReplies]
	MachineOpens    int       // opens labelled machine, kept out of Opens
	MachineClicks   int       // clicks on links and file links labelled machine, kept out of Clicks and AttachmentOpens
}

// Link is a tracked link of a message with its click counters.
type Link struct {
	Index        int
	URL          string
	Clicks       int
	UniqueClicks int
}

// ClickThroughRate is unique clicks on this link over unique clicks on the message (seed 003).
func (l Link) ClickThroughRate(messageUniqueClicks int) float64 {
	if messageUniqueClicks == 0 {
		return 0
	}
	return float64(l.UniqueClicks) / float64(messageUniqueClicks)
}

// Message is a followed (or deliberately unfollowed) email and its renders.
type Message struct {
	ID                string
	Owner             string // the salesperson's email
	Subject           string
	HTML              string // as the author wrote it
	Recipients        []Recipient
	Individual        bool
	Following         bool
	NotFollowedReason string
	TemplateID        string
	CreatedAt         time.Time
	Renders           []Render
	Links             []Link
	Warnings          []string
	Counters          Counters
}

// RecipientEmail names the recipient at index i, or "" for the shared render.
func (m Message) RecipientEmail(i int) string {
	if i < 0 || i >= len(m.Recipients) {
		return ""
	}
	return m.Recipients[i].Email
}
