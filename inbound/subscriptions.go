package inbound

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"
)

// ManagerOptions tune the subscription manager; the URLs are required.
type ManagerOptions struct {
	NotificationURL string // where Graph posts change notifications (Engage's POST /hooks/graph)
	LifecycleURL    string // where Graph posts lifecycle events (POST /hooks/graph/lifecycle)
	// Lifetime is the expiry asked for; Graph allows under 7 days on Outlook messages. Default 3 days.
	Lifetime time.Duration
	// RenewBefore is how long before expiry a subscription is renewed; default 12 hours.
	RenewBefore time.Duration
	// SenderWindow is how far back sending followed mail makes a mailbox worth watching; default 30 days.
	SenderWindow time.Duration
	SyncEvery    time.Duration // how often subscriptions are checked; default 5 minutes
	CatchUpEvery time.Duration // how often every Inbox is caught up by delta query; default 15 minutes
	// FirstCatchUp is how far back the first catch-up of a mailbox looks (there is no delta link yet);
	// default 7 days, which covers a week of downtime before the first delta link was saved.
	FirstCatchUp time.Duration
	Now          func() time.Time
	Log          *slog.Logger
}

// Manager keeps one Inbox subscription per active sender: it creates, renews and removes them, acts on
// lifecycle events, and catches up by delta query so downtime and missed notifications lose nothing.
type Manager struct {
	store   Store
	mailbox Mailbox
	queue   *Processor
	opts    ManagerOptions
}

// NewManager returns a manager that queues what it finds on queue, and registers itself for lifecycle events.
func NewManager(store Store, mailbox Mailbox, queue *Processor, opts ManagerOptions) (*Manager, error) {
	for _, u := range []string{opts.NotificationURL, opts.LifecycleURL} {
		if pu, err := url.Parse(u); err != nil || pu.Scheme != "https" || pu.Host == "" {
			return nil, fmt.Errorf("inbound: notification URL %q must be an absolute https URL Graph can reach", u)
		}
	}
	if opts.Lifetime <= 0 {
		opts.Lifetime = 72 * time.Hour
	}
	if opts.RenewBefore <= 0 {
		opts.RenewBefore = 12 * time.Hour
	}
	if opts.SenderWindow <= 0 {
		opts.SenderWindow = 30 * 24 * time.Hour
	}
	if opts.SyncEvery <= 0 {
		opts.SyncEvery = 5 * time.Minute
	}
	if opts.CatchUpEvery <= 0 {
		opts.CatchUpEvery = 15 * time.Minute
	}
	if opts.FirstCatchUp <= 0 {
		opts.FirstCatchUp = 7 * 24 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{store: store, mailbox: mailbox, queue: queue, opts: opts}
	queue.SetLifecycle(m)
	return m, nil
}

// Run syncs subscriptions and catches up every Inbox, at once and then on their tickers, until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	m.logErr(ctx, "subscriptions not synced", m.Sync(ctx))
	m.logErr(ctx, "inbox catch-up failed", m.CatchUpAll(ctx))
	sync := time.NewTicker(m.opts.SyncEvery)
	defer sync.Stop()
	catchUp := time.NewTicker(m.opts.CatchUpEvery)
	defer catchUp.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sync.C:
			m.logErr(ctx, "subscriptions not synced", m.Sync(ctx))
		case <-catchUp.C:
			m.logErr(ctx, "inbox catch-up failed", m.CatchUpAll(ctx))
		}
	}
}

func (m *Manager) logErr(ctx context.Context, msg string, err error) {
	if err != nil && ctx.Err() == nil {
		m.opts.Log.ErrorContext(ctx, msg+"; retrying on the next tick", "err", err)
	}
}

// Sync subscribes new senders, renews subscriptions that expire within RenewBefore (re-creating those
// Graph lost), and removes subscriptions of mailboxes that stopped sending followed mail.
func (m *Manager) Sync(ctx context.Context) error {
	now := m.opts.Now().UTC()
	senders, err := m.store.ActiveSenders(ctx, now.Add(-m.opts.SenderWindow))
	if err != nil {
		return fmt.Errorf("inbound: active senders: %w", err)
	}
	subs, err := m.store.InboxSubscriptions(ctx)
	if err != nil {
		return fmt.Errorf("inbound: subscriptions: %w", err)
	}
	active := map[string]bool{}
	for _, s := range senders {
		active[strings.ToLower(s)] = true
	}
	have := map[string]bool{}
	var errs []error
	for _, s := range subs {
		switch {
		case !active[s.Mailbox]:
			errs = append(errs, m.unsubscribe(ctx, s))
		case s.ExpiresAt.Sub(now) <= m.opts.RenewBefore:
			have[s.Mailbox] = true
			errs = append(errs, m.renew(ctx, s))
		default:
			have[s.Mailbox] = true
		}
	}
	for _, mb := range senders {
		mb = strings.ToLower(mb)
		if !have[mb] {
			have[mb] = true
			if _, err := m.subscribe(ctx, mb); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// subscribe creates and records a subscription on mailbox's Inbox with a fresh client state.
func (m *Manager) subscribe(ctx context.Context, mailbox string) (Subscription, error) {
	var secret [32]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return Subscription{}, fmt.Errorf("inbound: client state: %w", err)
	}
	now := m.opts.Now().UTC().Truncate(time.Millisecond)
	s := Subscription{Mailbox: mailbox, ClientState: hex.EncodeToString(secret[:]), CreatedAt: now}
	id, expires, err := m.mailbox.Subscribe(ctx, SubscriptionRequest{Mailbox: mailbox, NotificationURL: m.opts.NotificationURL,
		LifecycleURL: m.opts.LifecycleURL, ClientState: s.ClientState, ExpiresAt: now.Add(m.opts.Lifetime)})
	if err != nil {
		return Subscription{}, fmt.Errorf("inbound: subscribe to %s: %w", mailbox, err)
	}
	s.ID, s.ExpiresAt = id, expires.UTC()
	if err := m.store.SaveInboxSubscription(ctx, s); err != nil {
		// Graph would notify about a subscription Engage cannot check: take it back.
		return Subscription{}, errors.Join(fmt.Errorf("inbound: record subscription of %s: %w", mailbox, err), m.mailbox.Unsubscribe(ctx, id))
	}
	m.opts.Log.InfoContext(ctx, "inbox subscribed", "mailbox", mailbox, "subscription", id, "expires", s.ExpiresAt)
	return s, nil
}

// renew extends s; when Graph lost it, a new one is made and the Inbox caught up.
func (m *Manager) renew(ctx context.Context, s Subscription) error {
	expires, err := m.mailbox.Renew(ctx, s.ID, m.opts.Now().UTC().Add(m.opts.Lifetime))
	if errors.Is(err, ErrSubscriptionGone) {
		return m.resubscribe(ctx, s)
	}
	if err != nil {
		return fmt.Errorf("inbound: renew subscription of %s: %w", s.Mailbox, err)
	}
	s.ExpiresAt = expires.UTC()
	if err := m.store.SaveInboxSubscription(ctx, s); err != nil {
		return fmt.Errorf("inbound: record renewal of %s: %w", s.Mailbox, err)
	}
	return nil
}

// resubscribe replaces a subscription Graph no longer has and catches up on what arrived meanwhile.
func (m *Manager) resubscribe(ctx context.Context, s Subscription) error {
	if err := m.store.DeleteInboxSubscription(ctx, s.ID); err != nil {
		return fmt.Errorf("inbound: forget subscription of %s: %w", s.Mailbox, err)
	}
	if _, err := m.subscribe(ctx, s.Mailbox); err != nil {
		return err
	}
	return m.CatchUp(ctx, s.Mailbox)
}

func (m *Manager) unsubscribe(ctx context.Context, s Subscription) error {
	if err := m.mailbox.Unsubscribe(ctx, s.ID); err != nil && !errors.Is(err, ErrSubscriptionGone) {
		return fmt.Errorf("inbound: unsubscribe %s: %w", s.Mailbox, err)
	}
	if err := m.store.DeleteInboxSubscription(ctx, s.ID); err != nil {
		return fmt.Errorf("inbound: forget subscription of %s: %w", s.Mailbox, err)
	}
	return nil
}

// HandleLifecycle implements LifecycleHandler: reauthorizationRequired renews (which reauthorises),
// subscriptionRemoved subscribes again, and every event ends with a catch-up, since notifications may
// have been lost.
func (m *Manager) HandleLifecycle(ctx context.Context, subscriptionID, event string) error {
	s, err := m.store.InboxSubscription(ctx, subscriptionID)
	if err != nil {
		return permanent{fmt.Errorf("inbound: lifecycle %s for subscription %s: %w", event, subscriptionID, err)}
	}
	switch event {
	case LifecycleReauthorize:
		if err := m.renew(ctx, s); err != nil {
			return err
		}
	case LifecycleRemoved:
		return m.resubscribe(ctx, s)
	case LifecycleMissed:
	default:
		return permanent{fmt.Errorf("inbound: unknown lifecycle event %q", event)}
	}
	return m.CatchUp(ctx, s.Mailbox)
}

// CatchUpAll catches up every subscribed Inbox.
func (m *Manager) CatchUpAll(ctx context.Context) error {
	subs, err := m.store.InboxSubscriptions(ctx)
	if err != nil {
		return fmt.Errorf("inbound: subscriptions: %w", err)
	}
	var errs []error
	for _, s := range subs {
		errs = append(errs, m.CatchUp(ctx, s.Mailbox))
	}
	return errors.Join(errs...)
}

// maxDeltaPages bounds one catch-up, so one full Inbox does not hold up the others; the link to the
// next page is saved and the next catch-up carries on from it.
const maxDeltaPages = 100

// CatchUp queues the messages that reached mailbox's Inbox since its last catch-up (or, the first
// time, since FirstCatchUp ago), page by page, saving the delta link at the end, or the next page's
// link when it stops at maxDeltaPages.
func (m *Manager) CatchUp(ctx context.Context, mailbox string) error {
	link, err := m.store.DeltaLink(ctx, mailbox)
	if err != nil {
		return fmt.Errorf("inbound: delta link of %s: %w", mailbox, err)
	}
	since := m.opts.Now().UTC().Add(-m.opts.FirstCatchUp)
	for range maxDeltaPages {
		page, err := m.mailbox.Delta(ctx, mailbox, link, since)
		if err != nil {
			return fmt.Errorf("inbound: delta of %s: %w", mailbox, err)
		}
		items := make([]Item, 0, len(page.MessageIDs))
		for _, id := range page.MessageIDs {
			items = append(items, MessageItem(mailbox, id))
		}
		if err := m.queue.Enqueue(ctx, items...); err != nil {
			return err
		}
		switch {
		case page.DeltaLink != "":
			if err := m.store.SaveDeltaLink(ctx, mailbox, page.DeltaLink); err != nil {
				return fmt.Errorf("inbound: save delta link of %s: %w", mailbox, err)
			}
			return nil
		case page.NextLink == "":
			return fmt.Errorf("inbound: delta of %s: page with neither next nor delta link", mailbox)
		}
		link = page.NextLink
	}
	// A next link resumes the round where it stopped, as a delta link starts the next one.
	if err := m.store.SaveDeltaLink(ctx, mailbox, link); err != nil {
		return fmt.Errorf("inbound: save where the catch-up of %s stopped: %w", mailbox, err)
	}
	m.opts.Log.InfoContext(ctx, "inbox catch-up stopped at its page limit; it continues from there next round",
		"mailbox", mailbox, "pages", maxDeltaPages)
	return nil
}

// MessageItem is the queue item for a message in mailbox's Inbox; a notification and the catch-up
// name the same message alike, so it is queued once.
func MessageItem(mailbox, graphID string) Item {
	mailbox = strings.ToLower(mailbox)
	return Item{ID: "msg:" + mailbox + ":" + graphID, Kind: ItemMessage, Mailbox: mailbox, GraphID: graphID}
}
