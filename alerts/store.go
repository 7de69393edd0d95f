package alerts

import (
	"context"
	"time"

	"github.com/engage-email/engage/followed"
)

// Store is what alerts needs from a backend. Every method is atomic; sequence numbers are assigned at
// commit in increasing order, so a reader that has seen seq n has seen every alert before it.
type Store interface {
	// AppendAlerts stores alerts whose Key is new, gives them Seq, and returns those it stored.
	AppendAlerts(ctx context.Context, as []Alert) ([]Alert, error)
	// AlertsAfter lists every owner's alerts with Seq > after, oldest first: the tail every instance follows.
	AlertsAfter(ctx context.Context, after int64, limit int) ([]Alert, error)
	// LastAlertSeq is the highest Seq stored, 0 when none: where a new tailer starts.
	LastAlertSeq(ctx context.Context) (int64, error)
	// ListAlerts pages through one owner's alerts.
	ListAlerts(ctx context.Context, q AlertQuery) ([]Alert, error)
	// MarkAlertsRead marks the owner's alerts among ids read and returns how many changed; other
	// owners' ids are left alone.
	MarkAlertsRead(ctx context.Context, owner string, ids []string, at time.Time) (int, error)

	// CreateReminder stores a pending reminder.
	CreateReminder(ctx context.Context, r Reminder) error
	// Reminders lists an owner's reminders (of one message when MessageID is set), soonest due first.
	Reminders(ctx context.Context, owner, messageID string) ([]Reminder, error)
	// CancelReminder cancels the owner's pending reminder and returns it; followed.ErrNotFound when the
	// owner has no such reminder; a reminder no longer pending comes back unchanged.
	CancelReminder(ctx context.Context, owner, id string, at time.Time) (Reminder, error)
	// ClaimDueReminders leases up to limit pending reminders due at now whose lease is free or expired
	// to instance until now+lease; two claimers never both get one while its lease runs.
	ClaimDueReminders(ctx context.Context, instance string, now time.Time, lease time.Duration, limit int) ([]Reminder, error)
	// FinishReminder settles a reminder claimed by instance as Fired (storing alert with it) or
	// Skipped; ErrLeaseLost when instance no longer holds it, and then nothing is written.
	FinishReminder(ctx context.Context, instance string, r Reminder, alert *Alert) error

	// AlertPreferences returns an owner's preferences, DefaultPreferences when never set.
	AlertPreferences(ctx context.Context, owner string) (Preferences, error)
	// SetAlertPreferences stores an owner's preferences.
	SetAlertPreferences(ctx context.Context, owner string, p Preferences) error

	// Engagements lists human clicks, attachment opens and replies recorded after the engagement
	// cursor that their owner's preferences want (DefaultPreferences for an owner with none), at most
	// limit events scanned, and the event position they run through.
	Engagements(ctx context.Context, limit int) (evs []Engagement, through int64, err error)
	// AppendEngagementAlerts stores alerts as AppendAlerts does and moves the engagement cursor to
	// through (never back) in the same transaction.
	AppendEngagementAlerts(ctx context.Context, as []Alert, through int64) ([]Alert, error)

	// UnannouncedFirstOpens lists, oldest first (by time, then message and recipient), up to limit
	// first opens at or after since that are still a person's (an audience 'open' entry whose claiming
	// event is not a machine's) and have no alert keyed FirstOpenKey(message, recipient): those whose
	// alert was lost between the events commit and the alert's. Owners' preferences are not applied.
	UnannouncedFirstOpens(ctx context.Context, since time.Time, limit int) ([]followed.FirstOpen, error)

	// RelabelledAlerts lists, oldest first, up to limit alerts at or after since, not withdrawn yet,
	// whose event is now a machine's: a FIRST_OPEN alert under its FirstOpenKey whose recipient's opens
	// at the alert's time are all labelled machine, or a LINK_CLICKED or ATTACHMENT_OPENED alert (key
	// "event:<id>") whose event is. Reason is the machine label's reason.
	RelabelledAlerts(ctx context.Context, since time.Time, limit int) ([]Withdrawal, error)
	// WithdrawAlerts stores each withdrawal's ALERT_WITHDRAWN alert, keyed "withdrawn:<id of the alert
	// taken back>", and moves a FIRST_OPEN alert taken back off its FirstOpenKey (so that the recipient's
	// real first open, when it comes, is alerted), both in one transaction per withdrawal; an alert
	// withdrawn already is left alone. Returns the ALERT_WITHDRAWN alerts stored.
	WithdrawAlerts(ctx context.Context, ws []Withdrawal) ([]Alert, error)
}

// WithdrawnKey is the key of the ALERT_WITHDRAWN alert that takes back the alert id.
func WithdrawnKey(id string) string { return "withdrawn:" + id }

// Withdrawal is an alert to take back, and the ALERT_WITHDRAWN alert that does it.
type Withdrawal struct {
	Alert  Alert  // the alert taken back, as stored
	Reason string // the machine label's reason
	By     Alert  // the ALERT_WITHDRAWN alert; WithdrawAlerts fills in its Seq
}

// AlertQuery pages through an owner's alerts: newest first, or oldest first with Ascending.
type AlertQuery struct {
	Owner      string
	UnreadOnly bool
	Before     int64 // newest first: Seq < Before when > 0
	After      int64 // Ascending: Seq > After
	Ascending  bool
	Limit      int
}

// Engagement is a recorded event an alert may report, with what the alert needs to name it.
type Engagement struct {
	Event     followed.Event
	Owner     string
	Subject   string
	Recipient string // the recipient's address when the render was individual or the event names one
}

// Messages is what alerts reads about followed messages: ownership when a reminder is set, counters
// when it falls due. followed.Store satisfies it.
type Messages interface {
	Message(ctx context.Context, id string) (followed.Message, error)
}
