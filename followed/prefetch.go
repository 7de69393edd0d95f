package followed

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/engage-email/engage/machines"
)

// PrefetchOptions tune the prefetch sweep.
type PrefetchOptions struct {
	// Settle is how long after an open the sweep waits for the recipient to do something else before
	// judging it; default 10 minutes.
	Settle time.Duration
	Every  time.Duration // how often it sweeps; default 1 minute
	// Lookback is how far before the settled horizon the first sweep after a start begins, so opens
	// that settled while Engage was down are judged too; default 1 hour.
	Lookback time.Duration
	Page     int // opens read per store call; default 500
	Log      *slog.Logger
	Now      func() time.Time // default time.Now
}

// PrefetchSweep relabels as PREFETCH the person's opens that came within seconds of sending and that
// nothing from the same recipient followed: a mail system fetching the pixel at delivery, not a
// reader. Whether something followed is known only later, so it runs behind the hits.
type PrefetchSweep struct {
	store      LabelStore
	classifier *machines.Classifier
	opts       PrefetchOptions
	cursor     *Cursor // where the last sweep stopped; nil before the first
}

// NewPrefetchSweep returns a sweep over store judged by c's rules; call Run (or Sweep).
func NewPrefetchSweep(store LabelStore, c *machines.Classifier, opts PrefetchOptions) *PrefetchSweep {
	if opts.Settle <= 0 {
		opts.Settle = 10 * time.Minute
	}
	if opts.Every <= 0 {
		opts.Every = time.Minute
	}
	if opts.Lookback <= 0 {
		opts.Lookback = time.Hour
	}
	if opts.Page <= 0 {
		opts.Page = 500
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &PrefetchSweep{store: store, classifier: c, opts: opts}
}

// Run sweeps every opts.Every until ctx is done.
func (p *PrefetchSweep) Run(ctx context.Context) {
	t := time.NewTicker(p.opts.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := p.Sweep(ctx); err != nil && ctx.Err() == nil {
			p.opts.Log.ErrorContext(ctx, "prefetch sweep failed; retrying on the next tick", "err", err)
		} else if n > 0 {
			p.opts.Log.InfoContext(ctx, "opens relabelled as prefetch", "opens", n)
		}
	}
}

// Sweep judges the opens that settled since the last sweep and returns how many it relabelled. On an
// error it keeps its place, so the next sweep takes the same opens again (relabelling is idempotent).
func (p *PrefetchSweep) Sweep(ctx context.Context) (int, error) {
	before := p.opts.Now().Add(-p.opts.Settle)
	cursor := p.cursor
	if cursor == nil {
		cursor = &Cursor{At: before.Add(-p.opts.Lookback)}
	}
	rules := p.classifier.Rules()
	relabelled := 0
	for {
		opens, err := p.store.EarlyOpens(ctx, EarlyOpenQuery{After: cursor, Before: before,
			Within: rules.PrefetchAfterSend(), Limit: p.opts.Page})
		if err != nil {
			return relabelled, fmt.Errorf("followed: prefetch candidates: %w", err)
		}
		var rs []Relabel
		for _, o := range opens {
			if lbl, ok := p.judge(o); ok {
				rs = append(rs, relabelOf(o.Event.ID, lbl))
			}
		}
		if len(rs) > 0 {
			if err := p.store.Relabel(ctx, rs); err != nil {
				return relabelled, fmt.Errorf("followed: relabel %d prefetches: %w", len(rs), err)
			}
			relabelled += len(rs)
		}
		if len(opens) < p.opts.Page {
			p.cursor = &Cursor{At: before}
			return relabelled, nil
		}
		last := opens[len(opens)-1].Event
		cursor = &Cursor{At: last.At, ID: last.ID}
		p.cursor = cursor
	}
}

// judge asks the classifier whether an early open was a prefetch.
func (p *PrefetchSweep) judge(o EarlyOpen) (machines.Label, bool) {
	h := machines.Hit{ID: o.Event.ID, Kind: machines.Open, Method: o.Event.Method, UserAgent: o.Event.UserAgent,
		At: o.Event.At, SentAt: o.SentAt}
	h.IP, _ = netip.ParseAddr(o.Event.IP)
	var later []machines.Hit
	if !o.LastActivity.IsZero() {
		later = []machines.Hit{{Kind: machines.Open, At: o.LastActivity}}
	}
	return p.classifier.Prefetch(h, later)
}
