// Package inbound learns about replies, auto-replies and bounces from the senders' mailboxes: Graph
// change notifications land in a durable queue, a processor fetches, classifies and matches each message
// to what Engage sent, and records the interaction; a manager keeps one Inbox subscription per sender.
package inbound

import (
	"context"
	"errors"
	"time"

	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/replies"
)

// ItemKind says what a queued item asks the processor to do.
type ItemKind string

// The kinds of queued work.
const (
	// ItemMessage is a new message in a mailbox's Inbox, named by its Graph id, to fetch and process.
	ItemMessage ItemKind = "MESSAGE"
	// ItemRaw is a raw RFC 5322 message (local mode's simulated inbound mail), processed as it is.
	ItemRaw ItemKind = "RAW"
	// ItemLifecycle is a subscription lifecycle event (reauthorizationRequired, subscriptionRemoved, missed).
	ItemLifecycle ItemKind = "LIFECYCLE"
)

// Lifecycle events Graph sends about a subscription.
const (
	LifecycleReauthorize = "reauthorizationRequired"
	LifecycleRemoved     = "subscriptionRemoved"
	LifecycleMissed      = "missed"
)

// Item is one unit of queued work, stored before Graph is answered so a crash after the 202 loses nothing.
type Item struct {
	ID             string // the same notification enqueued twice is stored once
	Kind           ItemKind
	Mailbox        string // the sender's mailbox the message arrived in
	GraphID        string // ItemMessage: the message's Graph id
	Raw            []byte // ItemRaw: the whole message
	SubscriptionID string // ItemLifecycle
	Event          string // ItemLifecycle: one of the Lifecycle constants
	EnqueuedAt     time.Time
	Attempts       int    // claims so far, this one included
	LastError      string // why the previous try failed
}

// Subscription is a Graph change-notification subscription on one sender's Inbox. ClientState is a
// secret Graph echoes in each notification, proving it came from the subscription Engage made.
type Subscription struct {
	ID          string
	Mailbox     string
	ClientState string
	ExpiresAt   time.Time
	CreatedAt   time.Time
}

// SubscriptionRequest is what a new subscription needs.
type SubscriptionRequest struct {
	Mailbox         string
	NotificationURL string
	LifecycleURL    string
	ClientState     string
	ExpiresAt       time.Time
}

// Message is an inbound message as the mailbox returns it, with its internet headers.
type Message struct {
	GraphID           string
	InternetMessageID string
	ConversationID    string
	ReceivedAt        time.Time
	// Date is the message's own Date header when ReceivedAt is only when Engage got it (simulated mail):
	// it keeps the event id the same when one mail is queued twice. Zero: ReceivedAt is stable.
	Date    time.Time
	Inbound replies.Inbound
}

// DeltaPage is one page of a delta query on an Inbox: new message ids, and either the next page's link
// or, on the last page, the delta link that starts the next catch-up.
type DeltaPage struct {
	MessageIDs []string
	NextLink   string
	DeltaLink  string
}

// Mailbox is what inbound needs from Microsoft 365 (m365 implements it; tests use a fake Graph).
type Mailbox interface {
	// Subscribe creates a subscription to messages created in the mailbox's Inbox and returns its id
	// and the expiry Graph granted.
	Subscribe(ctx context.Context, r SubscriptionRequest) (id string, expires time.Time, err error)
	// Renew extends a subscription (which also reauthorises it) and returns the expiry granted;
	// ErrSubscriptionGone when Graph no longer has it.
	Renew(ctx context.Context, id string, expires time.Time) (time.Time, error)
	// Unsubscribe deletes a subscription; one already gone is not an error.
	Unsubscribe(ctx context.Context, id string) error
	// Message fetches a message with its internet headers; followed.ErrNotFound when it is gone.
	Message(ctx context.Context, mailbox, id string) (Message, error)
	// Delta reads one page of the Inbox's changes: from link when set, else from the start with messages
	// received since then.
	Delta(ctx context.Context, mailbox, link string, since time.Time) (DeltaPage, error)
	// SentMessage finds the message of mailbox's Sent Items whose internetMessageId is internetID;
	// followed.ErrNotFound when there is none.
	SentMessage(ctx context.Context, mailbox, internetID string) (SentMail, error)
}

// SentMail is a message of a sender's Sent Items: the ids replies name it by, and its HTML body, whose
// tracking tokens say which followed message it renders.
type SentMail struct {
	InternetMessageID string
	ConversationID    string
	SentAt            time.Time
	HTML              string
}

// Tokens finds the tracking token in a body; followed.Service implements it.
type Tokens interface {
	TokenIn(html string) (followed.Token, bool)
}

// ErrSubscriptionGone means Graph no longer knows the subscription, so it must be created again.
var ErrSubscriptionGone = errors.New("inbound: subscription gone")

// ErrLeaseLost means another instance took over a queued item whose lease ran out.
var ErrLeaseLost = errors.New("inbound: item lease lost")

// Match is the render a reply answers, found by the ids it refers to.
type Match struct {
	MessageID string
	Render    int
}

// OutlookSend is a render the Outlook add-in had Outlook send, as found in the sender's Sent Items: the
// ids replies name it by, which only Exchange knows, since Outlook and not Engage sent it.
type OutlookSend struct {
	MessageID         string
	Render            int
	InternetMessageID string
	ConversationID    string
	SentAt            time.Time
}

// Store is what inbound needs from a backend. Every method is atomic.
type Store interface {
	// EnqueueInbound stores items; an id already queued (or already processed and still remembered) is
	// ignored, so Graph's retries and the delta catch-up do not queue one message twice.
	EnqueueInbound(ctx context.Context, items []Item) error
	// ClaimInbound leases to instance until now+lease up to limit items that are due and not leased,
	// oldest first, counting the attempt.
	ClaimInbound(ctx context.Context, instance string, now time.Time, lease time.Duration, limit int) ([]Item, error)
	// FinishInbound removes an item instance holds; ErrLeaseLost when it no longer holds it.
	FinishInbound(ctx context.Context, instance, id string) error
	// RetryInbound releases an item instance holds to be tried again at at, keeping why it failed;
	// dead marks it as given up (kept for operators, never claimed again).
	RetryInbound(ctx context.Context, instance, id string, at time.Time, reason string, dead bool) error
	// InboundPending counts the items waiting (not given up), for operators and tests.
	InboundPending(ctx context.Context) (int, error)
	// PurgeInbound forgets items processed before before and returns how many.
	PurgeInbound(ctx context.Context, before time.Time) (int, error)

	// SaveInboxSubscription records (or replaces, by id) a subscription.
	SaveInboxSubscription(ctx context.Context, s Subscription) error
	// InboxSubscription returns a subscription by id, or followed.ErrNotFound.
	InboxSubscription(ctx context.Context, id string) (Subscription, error)
	// InboxSubscriptions lists every subscription, by mailbox.
	InboxSubscriptions(ctx context.Context) ([]Subscription, error)
	// DeleteInboxSubscription forgets a subscription; an unknown id is not an error.
	DeleteInboxSubscription(ctx context.Context, id string) error
	// DeltaLink returns the mailbox's saved delta link (or the next link of a catch-up cut short), "" when none.
	DeltaLink(ctx context.Context, mailbox string) (string, error)
	// SaveDeltaLink records where the mailbox's next catch-up starts.
	SaveDeltaLink(ctx context.Context, mailbox, link string) error
	// ActiveSenders lists the mailboxes that sent followed mail since since: by a delivery job sent since,
	// or, for mail the Outlook add-in has Outlook send itself, by a followed message created since that
	// has no delivery job (Engage cannot tell when Outlook sends it).
	ActiveSenders(ctx context.Context, since time.Time) ([]string, error)

	// MatchSend finds the render whose recorded internetMessageId is the first of ids that matches, else
	// one whose conversation is conversationID (when not ""); followed.ErrNotFound when none.
	MatchSend(ctx context.Context, ids []string, conversationID string) (Match, error)
	// RecordOutlookSend records the ids of a render the Outlook add-in had Outlook send, so MatchSend finds
	// replies to it; a render already recorded, a message a delivery job sends (it records its own) and a
	// message that is gone are left as they are, without error.
	RecordOutlookSend(ctx context.Context, s OutlookSend) error
	// AddSoftBounce counts a soft bounce of email once per eventID and returns the streak: soft bounces
	// in a row since the address's last human open or reply (or ResetBounceStreak).
	AddSoftBounce(ctx context.Context, email, eventID string, at time.Time) (int, error)
	// ResetBounceStreak ends the address's soft-bounce streak.
	ResetBounceStreak(ctx context.Context, email string) error
}

// Events is what inbound needs from followed's store: the message a reply answers, and the batch commit
// that stores its interaction (ignoring an id stored already) and moves the counters.
type Events interface {
	Message(ctx context.Context, id string) (followed.Message, error)
	Renders(ctx context.Context, messageID string) ([]followed.Render, error)
	RecordEvents(ctx context.Context, evs []followed.Event) ([]followed.FirstOpen, error)
}

// Suppressor stops following an address after a hard bounce; consent.Service implements it.
type Suppressor interface {
	Suppress(ctx context.Context, email, reason string, until time.Time) error
}
