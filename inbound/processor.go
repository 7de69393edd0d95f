package inbound

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"strings"
	"time"

	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/replies"
)

// Options tune the processor; the zero value is fine for production.
type Options struct {
	Instance    string        // lease holder name; default random
	Lease       time.Duration // how long a claimed item is this instance's; default 2 minutes
	PollEvery   time.Duration // how often the queue is looked at without a wake-up; default 2 seconds
	MaxAttempts int           // tries before an item is given up; default 10
	RetryBase   time.Duration // first wait after a failure, doubled each time; default 10 seconds
	RetryMax    time.Duration // longest wait; default 10 minutes
	// SuppressMonths is how long a hard-bounced address stays suppressed; default 6 (seed 003).
	SuppressMonths int
	// KeepDone is how long processed items are remembered, so a repeated notification is ignored; default 30 days.
	KeepDone time.Duration
	Now      func() time.Time
	Log      *slog.Logger
}

// LifecycleHandler acts on subscription lifecycle events taken from the queue; Manager implements it.
type LifecycleHandler interface {
	HandleLifecycle(ctx context.Context, subscriptionID, event string) error
}

// Processor takes queued inbound mail, classifies it, matches it to what was sent and records the effect.
type Processor struct {
	store     Store
	events    Events
	suppress  Suppressor
	mailbox   Mailbox // nil in local mode
	lifecycle LifecycleHandler
	tokens    Tokens // nil: mail the Outlook add-in had Outlook send is not looked for
	opts      Options
	wake      chan struct{}
}

// NewProcessor returns a processor; mailbox may be nil (local mode: only raw mail is processed).
func NewProcessor(store Store, events Events, suppress Suppressor, mailbox Mailbox, opts Options) *Processor {
	if opts.Instance == "" {
		opts.Instance = "inbound-" + followed.NewID(time.Now())
	}
	if opts.Lease <= 0 {
		opts.Lease = 2 * time.Minute
	}
	if opts.PollEvery <= 0 {
		opts.PollEvery = 2 * time.Second
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 10
	}
	if opts.RetryBase <= 0 {
		opts.RetryBase = 10 * time.Second
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = 10 * time.Minute
	}
	if opts.SuppressMonths <= 0 {
		opts.SuppressMonths = 6
	}
	if opts.KeepDone <= 0 {
		opts.KeepDone = 30 * 24 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Processor{store: store, events: events, suppress: suppress, mailbox: mailbox, opts: opts, wake: make(chan struct{}, 1)}
}

// SetLifecycle routes queued lifecycle events to h; call it before Run.
func (p *Processor) SetLifecycle(h LifecycleHandler) { p.lifecycle = h }

// SetTokens lets the processor recognise mail the Outlook add-in had Outlook send, by the tracking
// tokens of its copy in the sender's Sent Items; call it before Run.
func (p *Processor) SetTokens(t Tokens) { p.tokens = t }

// Enqueue stores items durably and wakes the processor.
func (p *Processor) Enqueue(ctx context.Context, items ...Item) error {
	if len(items) == 0 {
		return nil
	}
	now := p.opts.Now().UTC().Truncate(time.Millisecond)
	for i := range items {
		if items[i].EnqueuedAt.IsZero() {
			items[i].EnqueuedAt = now
		}
	}
	if err := p.store.EnqueueInbound(ctx, items); err != nil {
		return fmt.Errorf("inbound: enqueue %d items: %w", len(items), err)
	}
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return nil
}

// maxRaw bounds simulated inbound mail; real mail is fetched from the mailbox instead.
const maxRaw = 1 << 20

// SubmitRaw queues a raw RFC 5322 message as arrived in mailbox (local mode's simulation) and returns
// its queue id. A message that cannot be parsed is refused with followed.ErrBadInput and nothing is queued.
func (p *Processor) SubmitRaw(ctx context.Context, mailbox string, raw []byte) (string, error) {
	if len(raw) > maxRaw {
		return "", fmt.Errorf("%w: message of %d bytes, over the %d-byte limit", followed.ErrBadInput, len(raw), maxRaw)
	}
	if _, err := replies.ParseMIME(raw); err != nil {
		return "", fmt.Errorf("%w: %s", followed.ErrBadInput, err)
	}
	if strings.TrimSpace(mailbox) == "" {
		return "", fmt.Errorf("%w: no mailbox", followed.ErrBadInput)
	}
	it := Item{ID: "raw:" + followed.NewID(p.opts.Now()), Kind: ItemRaw, Mailbox: strings.ToLower(mailbox), Raw: raw}
	if err := p.Enqueue(ctx, it); err != nil {
		return "", err
	}
	return it.ID, nil
}

// Run processes the queue until ctx ends: at once when woken by Enqueue, else every PollEvery.
func (p *Processor) Run(ctx context.Context) {
	t := time.NewTicker(p.opts.PollEvery)
	defer t.Stop()
	lastPurge := time.Time{}
	for {
		if _, err := p.Drain(ctx); err != nil && ctx.Err() == nil {
			p.opts.Log.ErrorContext(ctx, "inbound queue not processed; retrying on the next tick", "err", err)
		}
		if now := p.opts.Now(); now.Sub(lastPurge) > time.Hour {
			lastPurge = now
			if _, err := p.store.PurgeInbound(ctx, now.Add(-p.opts.KeepDone)); err != nil && ctx.Err() == nil {
				p.opts.Log.WarnContext(ctx, "processed inbound items not purged; retrying in an hour", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-p.wake:
		}
	}
}

// claimBatch is how many items one claim takes.
const claimBatch = 50

// Drain processes every due item and returns how many it settled (done, retried or given up).
func (p *Processor) Drain(ctx context.Context) (int, error) {
	n := 0
	for {
		items, err := p.store.ClaimInbound(ctx, p.opts.Instance, p.opts.Now().UTC(), p.opts.Lease, claimBatch)
		if err != nil {
			return n, fmt.Errorf("inbound: claim: %w", err)
		}
		for _, it := range items {
			if err := p.settle(ctx, it); err != nil {
				return n, err
			}
			n++
		}
		if len(items) == 0 {
			return n, nil // items queued while processing (a catch-up's) were taken by the next claim
		}
	}
}

// permanent marks a failure that trying again cannot fix; the item is dropped with a log line.
type permanent struct{ err error }

func (e permanent) Error() string { return e.err.Error() }
func (e permanent) Unwrap() error { return e.err }

// settle processes one claimed item and records the outcome in the queue.
func (p *Processor) settle(ctx context.Context, it Item) error {
	pctx, cancel := context.WithTimeout(ctx, p.opts.Lease*3/4)
	err := p.process(pctx, it)
	cancel()
	var perm permanent
	switch {
	case err == nil:
	case errors.As(err, &perm):
		p.opts.Log.WarnContext(ctx, "inbound item dropped", "item", it.ID, "mailbox", it.Mailbox, "err", err)
	case ctx.Err() != nil:
		return ctx.Err() // shutting down: the lease runs out and the item is claimed again
	default:
		dead := it.Attempts >= p.opts.MaxAttempts
		wait := min(p.opts.RetryBase<<min(it.Attempts-1, 20), p.opts.RetryMax)
		if dead {
			p.opts.Log.ErrorContext(ctx, "inbound item given up", "item", it.ID, "attempts", it.Attempts, "err", err)
		} else {
			p.opts.Log.WarnContext(ctx, "inbound item failed; retrying", "item", it.ID, "attempts", it.Attempts, "wait", wait.String(), "err", err)
		}
		rerr := p.store.RetryInbound(ctx, p.opts.Instance, it.ID, p.opts.Now().UTC().Add(wait), clip(err.Error(), 500), dead)
		if rerr != nil && !errors.Is(rerr, ErrLeaseLost) {
			return fmt.Errorf("inbound: release %s: %w", it.ID, rerr)
		}
		return nil
	}
	if ferr := p.store.FinishInbound(ctx, p.opts.Instance, it.ID); ferr != nil && !errors.Is(ferr, ErrLeaseLost) {
		return fmt.Errorf("inbound: finish %s: %w", it.ID, ferr)
	}
	return nil
}

func (p *Processor) process(ctx context.Context, it Item) error {
	switch it.Kind {
	case ItemLifecycle:
		if p.lifecycle == nil {
			return permanent{fmt.Errorf("inbound: lifecycle event %s without a subscription manager", it.Event)}
		}
		return p.lifecycle.HandleLifecycle(ctx, it.SubscriptionID, it.Event)
	case ItemRaw:
		in, err := replies.ParseMIME(it.Raw)
		if err != nil {
			return permanent{fmt.Errorf("inbound: parse raw message: %w", err)}
		}
		msg := Message{Inbound: in, ReceivedAt: it.EnqueuedAt}
		for _, h := range in.Headers {
			switch {
			case strings.EqualFold(h.Name, "Message-ID"):
				if ids := replies.ParseMessageIDs(h.Value); len(ids) > 0 {
					msg.InternetMessageID = ids[0]
				}
			case strings.EqualFold(h.Name, "Date"):
				if at, err := mail.ParseDate(h.Value); err == nil {
					msg.Date = at.UTC()
				}
			}
		}
		if msg.InternetMessageID == "" {
			msg.InternetMessageID = it.ID
		}
		return p.handle(ctx, it.Mailbox, msg)
	case ItemMessage:
		if p.mailbox == nil {
			return permanent{errors.New("inbound: no mailbox to fetch from (local mode)")}
		}
		msg, err := p.mailbox.Message(ctx, it.Mailbox, it.GraphID)
		if errors.Is(err, followed.ErrNotFound) {
			return permanent{fmt.Errorf("inbound: message %s is gone from %s: %w", it.GraphID, it.Mailbox, err)}
		}
		if err != nil {
			return fmt.Errorf("inbound: fetch message %s of %s: %w", it.GraphID, it.Mailbox, err)
		}
		if msg.InternetMessageID == "" {
			msg.InternetMessageID = it.GraphID
		}
		return p.handle(ctx, it.Mailbox, msg)
	}
	return permanent{fmt.Errorf("inbound: unknown item kind %q", it.Kind)}
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
