package alerts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/engage-email/engage/auth"
	"github.com/engage-email/engage/followed"
)

const (
	replayPage = 100
	tailPage   = 500
	// MaxPage caps a page of the alert listing.
	MaxPage = 100
	// MaxMarkRead caps the ids one markAlertsRead call may name.
	MaxMarkRead = 500
	// MaxReminderAhead is how far ahead a reminder may be set.
	MaxReminderAhead = 366 * 24 * time.Hour
)

// Options tune the service; the zero value gives the defaults.
type Options struct {
	Instance           string        // this process's name on reminder leases; default a random id
	Buffer             int           // alerts a subscriber may fall behind by before it is told to resync; default 64
	TailInterval       time.Duration // how often other instances' alerts are looked for; default 200ms
	WatchedInterval    time.Duration // how often they are looked for anyway while the store's Waker watches; default 10s
	ReminderInterval   time.Duration // how often due reminders are claimed; default 1s
	Lease              time.Duration // how long a claimed reminder is this instance's alone; default 30s
	EngagementInterval time.Duration // how often new clicks, attachment opens and replies are read; default 1s
	RecoveryInterval   time.Duration // how often first opens whose alert was lost are looked for; default 1m
	RecoveryWindow     time.Duration // how far back that sweep looks, at start and on each tick; default 24h
	// WithdrawInterval is how often first-open alerts whose open was relabelled a machine's are looked
	// for; default 30s. Relabels come within minutes (the prefetch sweep, a honeypot click).
	WithdrawInterval time.Duration
	WithdrawWindow   time.Duration // how far back that sweep looks; default 2h
	// Sends says whether a message's send is asked for and has not gone out, so that a reminder does not
	// fire on mail that has not left; nil treats every message as sent.
	Sends Sends
	Log   *slog.Logger
	Now   func() time.Time
}

// Sends is where a message's send stands, as delivery knows it.
type Sends interface {
	// SendPending reports whether a send of the message was asked for and has not gone out (scheduled,
	// being sent, retrying or failed), and when it is due; a message with no send asked for (a draft, or
	// mail the Outlook add-in sent itself) is not pending.
	SendPending(ctx context.Context, messageID string) (due time.Time, pending bool, err error)
}

// Service stores alerts, fires reminders and streams both to subscribers; one per process, all
// processes sharing one store.
type Service struct {
	store    Store
	messages Messages
	opts     Options
	log      *slog.Logger
	hub      *hub
	wake     chan struct{}
	wg       sync.WaitGroup
}

// New returns a service; call Start to run its loops.
func New(store Store, messages Messages, opts Options) *Service {
	if opts.Instance == "" {
		opts.Instance = followed.NewID(time.Now())
	}
	if opts.Buffer <= 0 {
		opts.Buffer = 64
	}
	if opts.TailInterval <= 0 {
		opts.TailInterval = 200 * time.Millisecond
	}
	if opts.WatchedInterval <= 0 {
		opts.WatchedInterval = 10 * time.Second
	}
	if opts.ReminderInterval <= 0 {
		opts.ReminderInterval = time.Second
	}
	if opts.Lease <= 0 {
		opts.Lease = 30 * time.Second
	}
	if opts.EngagementInterval <= 0 {
		opts.EngagementInterval = time.Second
	}
	if opts.RecoveryInterval <= 0 {
		opts.RecoveryInterval = time.Minute
	}
	if opts.RecoveryWindow <= 0 {
		opts.RecoveryWindow = 24 * time.Hour
	}
	if opts.WithdrawInterval <= 0 {
		opts.WithdrawInterval = 30 * time.Second
	}
	if opts.WithdrawWindow <= 0 {
		opts.WithdrawWindow = 2 * time.Hour
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Service{store: store, messages: messages, opts: opts, log: opts.Log, hub: newHub(), wake: make(chan struct{}, 1)}
}

// Start reads where the alert tail stands and starts the tailer (woken by the store's watch when it
// is a Waker), the reminder scheduler, the engagement watcher and the sweep for first opens whose
// alert was lost; they stop when ctx is done (Wait waits for them).
func (s *Service) Start(ctx context.Context) error {
	last, err := s.store.LastAlertSeq(ctx)
	if err != nil {
		return fmt.Errorf("alerts: start: %w", err)
	}
	loops := []func(context.Context){s.schedule, s.watchEngagements, s.recoverFirstOpens, s.withdrawRelabelled}
	if w, ok := s.store.(Waker); ok {
		fallback := make(chan struct{})
		loops = append(loops,
			func(ctx context.Context) { s.tail(ctx, last, s.opts.WatchedInterval, fallback) },
			func(ctx context.Context) { s.watch(ctx, w, fallback) })
	} else {
		loops = append(loops, func(ctx context.Context) { s.tail(ctx, last, s.opts.TailInterval, nil) })
	}
	for _, loop := range loops {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); loop(ctx) }()
	}
	return nil
}

// Wait blocks until the loops started by Start have returned.
func (s *Service) Wait() { s.wg.Wait() }

// Subscribers is how many subscriptions this instance is serving.
func (s *Service) Subscribers() int { return s.hub.count() }

// FirstOpens implements followed.FirstOpenHandler: it stores a FIRST_OPEN alert per first open (the
// store keeps one per message and recipient however often it is told) and wakes the tailer.
func (s *Service) FirstOpens(ctx context.Context, opens []followed.FirstOpen) {
	if _, err := s.appendFirstOpens(ctx, opens, map[string]Preferences{}); err != nil {
		s.log.ErrorContext(ctx, "first-open alerts not stored; the recovery sweep retries them", "count", len(opens), "err", err)
	}
}

// FirstOpenKey is the key of the one FIRST_OPEN alert of a message's recipient; stores match it when
// they look for first opens still unannounced.
func FirstOpenKey(messageID string, recipient int) string {
	return fmt.Sprintf("first_open:%s:%d", messageID, recipient)
}

// appendFirstOpens stores a FIRST_OPEN alert for each open whose owner wants them (prefs caches the
// owners' preferences), wakes the tailer when one is new, and returns how many were new. An owner
// whose preferences cannot be read is logged and skipped, so one owner never holds back the rest.
func (s *Service) appendFirstOpens(ctx context.Context, opens []followed.FirstOpen, prefs map[string]Preferences) (int, error) {
	var as []Alert
	for _, fo := range opens {
		p, err := s.preferences(ctx, prefs, fo.Owner)
		if err != nil {
			s.log.ErrorContext(ctx, "first-open alert not stored", "message", fo.MessageID, "err", err)
			continue
		}
		if !p.Wants(FirstOpen) || fo.At.Before(p.FirstOpenSince) {
			continue // unwanted now, or when it came
		}
		as = append(as, Alert{
			ID: followed.NewID(s.opts.Now()), Key: FirstOpenKey(fo.MessageID, fo.Recipient),
			Owner: fo.Owner, Kind: FirstOpen, At: fo.At.UTC(), MessageID: fo.MessageID, Subject: fo.Subject,
			Recipient: fo.Email, Device: fo.Device,
		})
	}
	if len(as) == 0 {
		return 0, nil
	}
	stored, err := s.store.AppendAlerts(ctx, as)
	if err != nil {
		return 0, fmt.Errorf("alerts: store %d first-open alerts: %w", len(as), err)
	}
	if len(stored) > 0 {
		s.notify()
	}
	return len(stored), nil
}

func (s *Service) preferences(ctx context.Context, cache map[string]Preferences, owner string) (Preferences, error) {
	if p, ok := cache[owner]; ok {
		return p, nil
	}
	p, err := s.store.AlertPreferences(ctx, owner)
	if err != nil {
		return Preferences{}, fmt.Errorf("alerts: preferences of %s: %w", owner, err)
	}
	cache[owner] = p
	return p, nil
}

// notify wakes the tailer so that an alert stored here reaches this instance's subscribers at once.
func (s *Service) notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// AlertPage is one page of the caller's alerts, newest first.
type AlertPage struct {
	Alerts  []Alert
	HasNext bool
}

// List pages through the caller's alerts, newest first; after is the cursor of the last alert seen.
func (s *Service) List(ctx context.Context, who auth.Identity, unreadOnly bool, first int, after string) (AlertPage, error) {
	switch {
	case first < 0:
		return AlertPage{}, fmt.Errorf("%w: first must not be negative", followed.ErrBadInput)
	case first == 0:
		first = 20
	case first > MaxPage:
		first = MaxPage
	}
	q := AlertQuery{Owner: who.Email, UnreadOnly: unreadOnly, Limit: first + 1}
	if after != "" {
		seq, err := DecodeCursor(after)
		if err != nil {
			return AlertPage{}, err
		}
		if seq == 0 {
			return AlertPage{Alerts: []Alert{}}, nil
		}
		q.Before = seq
	}
	as, err := s.store.ListAlerts(ctx, q)
	if err != nil {
		return AlertPage{}, fmt.Errorf("alerts: list: %w", err)
	}
	p := AlertPage{Alerts: as, HasNext: len(as) > first}
	if p.HasNext {
		p.Alerts = as[:first]
	}
	return p, nil
}

// MarkRead marks the caller's alerts among ids read and returns how many were unread; ids of other
// people's alerts change nothing.
func (s *Service) MarkRead(ctx context.Context, who auth.Identity, ids []string) (int, error) {
	if len(ids) == 0 {
		return 0, fmt.Errorf("%w: give at least one alert id", followed.ErrBadInput)
	}
	if len(ids) > MaxMarkRead {
		return 0, fmt.Errorf("%w: %d alert ids, over the limit of %d", followed.ErrBadInput, len(ids), MaxMarkRead)
	}
	for _, id := range ids {
		if id == "" {
			return 0, fmt.Errorf("%w: an alert id is empty", followed.ErrBadInput)
		}
	}
	n, err := s.store.MarkAlertsRead(ctx, who.Email, ids, s.opts.Now().UTC())
	if err != nil {
		return 0, fmt.Errorf("alerts: mark read: %w", err)
	}
	return n, nil
}

// Preferences returns the caller's alert preferences.
func (s *Service) Preferences(ctx context.Context, who auth.Identity) (Preferences, error) {
	p, err := s.store.AlertPreferences(ctx, who.Email)
	if err != nil {
		return Preferences{}, fmt.Errorf("alerts: preferences: %w", err)
	}
	return p, nil
}

// SetPreferences stores the caller's alert preferences, noting when first-open alerts are switched
// back on, so that opens from while they were off are never alerted.
func (s *Service) SetPreferences(ctx context.Context, who auth.Identity, p Preferences) (Preferences, error) {
	cur, err := s.store.AlertPreferences(ctx, who.Email)
	if err != nil {
		return Preferences{}, fmt.Errorf("alerts: set preferences: %w", err)
	}
	p.FirstOpenSince = cur.FirstOpenSince
	if p.FirstOpen && !cur.FirstOpen {
		p.FirstOpenSince = s.opts.Now().UTC().Truncate(time.Millisecond)
	}
	if err := s.store.SetAlertPreferences(ctx, who.Email, p); err != nil {
		return Preferences{}, fmt.Errorf("alerts: set preferences: %w", err)
	}
	return p, nil
}

// SetReminder sets a follow-up reminder on one of the caller's own messages, due at a future time.
func (s *Service) SetReminder(ctx context.Context, who auth.Identity, messageID string, c Condition, at time.Time) (Reminder, error) {
	if !c.Valid() {
		return Reminder{}, fmt.Errorf("%w: unknown reminder kind %q", followed.ErrBadInput, c)
	}
	now := s.opts.Now().UTC()
	at = at.UTC().Truncate(time.Millisecond)
	if !at.After(now) {
		return Reminder{}, fmt.Errorf("%w: the reminder time %s is in the past", followed.ErrBadInput, at.Format(time.RFC3339))
	}
	if at.Sub(now) > MaxReminderAhead {
		return Reminder{}, fmt.Errorf("%w: the reminder time %s is more than a year ahead", followed.ErrBadInput, at.Format(time.RFC3339))
	}
	m, err := s.messages.Message(ctx, messageID)
	if err == nil && m.Owner != who.Email {
		err = followed.ErrNotFound // reminders are on one's own messages; others' ids answer as absent
	}
	if err != nil {
		return Reminder{}, fmt.Errorf("alerts: reminder on message %s: %w", messageID, err)
	}
	if c == NotOpenedBy && !m.Following {
		return Reminder{}, fmt.Errorf("%w: the message is not followed, so its opens are not known: use NO_REPLY_BY or ANYWAY", followed.ErrBadInput)
	}
	if s.opts.Sends != nil {
		due, pending, err := s.opts.Sends.SendPending(ctx, m.ID)
		if err != nil {
			return Reminder{}, fmt.Errorf("alerts: reminder on message %s: send state: %w", m.ID, err)
		}
		if pending && !at.After(due) {
			return Reminder{}, fmt.Errorf("%w: the reminder time %s is not after the message is sent (%s)", followed.ErrBadInput,
				at.Format(time.RFC3339), due.UTC().Format(time.RFC3339))
		}
	}
	r := Reminder{ID: followed.NewID(now), Owner: who.Email, MessageID: m.ID, Subject: m.Subject, Condition: c,
		DueAt: at, CreatedAt: now.Truncate(time.Millisecond), State: Pending}
	if err := s.store.CreateReminder(ctx, r); err != nil {
		return Reminder{}, fmt.Errorf("alerts: store reminder: %w", err)
	}
	return r, nil
}

// CancelReminder cancels one of the caller's pending reminders; cancelling twice is harmless, but a
// reminder that already fired or was skipped cannot be cancelled.
func (s *Service) CancelReminder(ctx context.Context, who auth.Identity, id string) (Reminder, error) {
	r, err := s.store.CancelReminder(ctx, who.Email, id, s.opts.Now().UTC())
	if err != nil {
		return Reminder{}, fmt.Errorf("alerts: cancel reminder %s: %w", id, err)
	}
	if r.State != Cancelled {
		return Reminder{}, fmt.Errorf("%w: the reminder is already %s", followed.ErrBadInput, r.State)
	}
	return r, nil
}

// CancelReminders cancels the caller's pending reminders on one message (its scheduled send was
// cancelled: a follow-up on mail that will not leave would mislead) and says how many.
func (s *Service) CancelReminders(ctx context.Context, who auth.Identity, messageID string) (int, error) {
	rs, err := s.store.Reminders(ctx, who.Email, messageID)
	if err != nil {
		return 0, fmt.Errorf("alerts: cancel reminders of %s: %w", messageID, err)
	}
	n := 0
	for _, r := range rs {
		if r.State != Pending {
			continue
		}
		c, err := s.store.CancelReminder(ctx, who.Email, r.ID, s.opts.Now().UTC())
		if err != nil {
			return n, fmt.Errorf("alerts: cancel reminders of %s: %w", messageID, err)
		}
		if c.State == Cancelled {
			n++
		}
	}
	return n, nil
}

// Reminders lists the caller's reminders, of one message when messageID is set, soonest due first.
func (s *Service) Reminders(ctx context.Context, who auth.Identity, messageID string) ([]Reminder, error) {
	rs, err := s.store.Reminders(ctx, who.Email, messageID)
	if err != nil {
		return nil, fmt.Errorf("alerts: reminders: %w", err)
	}
	return rs, nil
}

// settle decides a due reminder at its time: the condition is read from the message's counters now,
// so a reply or an open that arrived before the due time passes it over.
func (s *Service) settle(ctx context.Context, r Reminder) (Reminder, *Alert, error) {
	now := s.opts.Now().UTC()
	r.DoneAt = now
	m, err := s.messages.Message(ctx, r.MessageID)
	if errors.Is(err, followed.ErrNotFound) {
		r.State, r.Reason = Skipped, "MESSAGE_GONE"
		return r, nil, nil
	}
	if err != nil {
		return r, nil, fmt.Errorf("alerts: reminder %s: %w", r.ID, err)
	}
	if s.opts.Sends != nil {
		_, pending, err := s.opts.Sends.SendPending(ctx, r.MessageID)
		if err != nil {
			return r, nil, fmt.Errorf("alerts: reminder %s: send state: %w", r.ID, err)
		}
		if pending { // a follow-up on mail that has not left (its send retrying, or failed) would mislead
			r.State, r.Reason = Skipped, "NOT_SENT"
			return r, nil, nil
		}
	}
	switch {
	case r.Condition == NoReplyBy && m.Counters.Replies > 0:
		r.State, r.Reason = Skipped, "REPLIED"
		return r, nil, nil
	case r.Condition == NotOpenedBy && m.Counters.UniqueOpens > 0:
		r.State, r.Reason = Skipped, "OPENED"
		return r, nil, nil
	}
	r.State = Fired
	return r, &Alert{ID: followed.NewID(now), Key: "reminder:" + r.ID, Owner: r.Owner, Kind: ReminderDue, At: r.DueAt,
		MessageID: r.MessageID, Subject: m.Subject, Reminder: r.ID, Condition: r.Condition}, nil
}

// WebhookDisabled implements feed.Alerter: one WEBHOOK_DISABLED alert to each admin named (duplicates
// and blanks skipped), its URL the endpoint's and its subject the reason, live to those subscribed;
// keyed by the failure streak, so that a call repeated by a retried step stores nothing more.
func (s *Service) WebhookDisabled(ctx context.Context, owners []string, endpointID, url, reason string, failingSince, at time.Time) error {
	seen := map[string]bool{}
	var as []Alert
	for _, o := range owners {
		if o == "" || seen[o] {
			continue
		}
		seen[o] = true
		as = append(as, Alert{ID: followed.NewID(s.opts.Now()), Key: fmt.Sprintf("webhook_disabled:%s:%d:%s", endpointID, failingSince.UnixMilli(), o),
			Owner: o, Kind: WebhookDisabled, At: at.UTC(), Subject: "Webhook disabled: " + reason, URL: url})
	}
	if len(as) == 0 {
		return nil
	}
	if _, err := s.store.AppendAlerts(ctx, as); err != nil {
		return fmt.Errorf("alerts: webhook %s disabled: %w", endpointID, err)
	}
	s.notify()
	return nil
}
