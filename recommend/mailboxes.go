package recommend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// ErrNoMailbox marks an address the tenant has no mailbox for (an external or unknown address), so the
// mailbox sync leaves it alone for a day instead of asking Graph again on every tick.
var ErrNoMailbox = errors.New("no mailbox")

// MailboxZones reads a colleague's time zone from their mailbox settings; m365 implements it app-only.
type MailboxZones interface {
	// MailboxZone returns an error wrapping ErrNoMailbox when the tenant has no mailbox at email.
	MailboxZone(ctx context.Context, email string) (*time.Location, error)
}

// ColleagueQuery selects the recipients whose mailbox time zone is worth reading: colleagues recently
// written to whose zone is unknown or was read from their mailbox long ago.
type ColleagueQuery struct {
	// Domains are the tenant's own lower-case domains; empty means the domains of the owners of the
	// messages created since Since (the senders are colleagues by definition).
	Domains     []string
	Since       time.Time // followed messages created at or after Since
	StaleBefore time.Time // mailbox profiles updated before StaleBefore are read again
	After       string    // page cursor: only addresses sorting after it
	Limit       int
}

// ColleagueStore is what the mailbox sync needs from a backend.
type ColleagueStore interface {
	ProfileSaver
	// Colleagues returns, sorted, up to q.Limit distinct lower-case recipients of followed messages
	// created since q.Since at q.Domains that have no profile or a mailbox profile updated before
	// q.StaleBefore; profiles a salesperson entered are never returned.
	Colleagues(ctx context.Context, q ColleagueQuery) ([]string, error)
}

// MailboxSyncOptions tunes the mailbox sync; zero values take the defaults.
type MailboxSyncOptions struct {
	Domains []string      // the tenant's own domains; empty: the senders' domains
	Every   time.Duration // between passes; default 15 minutes
	Window  time.Duration // how far back recent messages go; default 30 days
	MaxAge  time.Duration // a mailbox profile older than this is read again; default 7 days
	PerTick int           // mailbox lookups per pass, to stay far below Graph's throttling; default 50
	Now     func() time.Time
	Log     *slog.Logger
}

// Defaults of MailboxSyncOptions.
const (
	DefaultMailboxEvery   = 15 * time.Minute
	DefaultMailboxWindow  = 30 * 24 * time.Hour
	DefaultMailboxMaxAge  = 7 * 24 * time.Hour
	DefaultMailboxPerTick = 50
)

const (
	// noMailboxFor is how long an address without a mailbox is not asked about again.
	noMailboxFor = 24 * time.Hour
	// maxFailuresInRow ends a pass early: Graph or the credential is failing for everyone.
	maxFailuresInRow = 5
)

// MailboxSync keeps colleagues' time zones from their Outlook mailbox settings, the best source the
// send-time model has, by reading them in the background for recipients that lack a fresh one.
type MailboxSync struct {
	store   ColleagueStore
	zones   MailboxZones
	opts    MailboxSyncOptions
	domains []string
	// noMailbox holds, for addresses Graph said have no mailbox, when they may be asked about again.
	// Only Run's goroutine touches it.
	noMailbox map[string]time.Time
}

// MailboxSyncStats says what one pass did, for logs and tests.
type MailboxSyncStats struct {
	Looked    int // mailbox lookups made
	Saved     int // profiles saved
	NoMailbox int // addresses without a mailbox, remembered for a day
	Failed    int // lookups or saves that failed, tried again next pass
}

// NewMailboxSync builds the sync; domains given are checked and lower-cased.
func NewMailboxSync(store ColleagueStore, zones MailboxZones, opts MailboxSyncOptions) (*MailboxSync, error) {
	if store == nil || zones == nil {
		return nil, fmt.Errorf("new mailbox sync: a store and a mailbox reader are required: %w", ErrBadInput)
	}
	domains := make([]string, 0, len(opts.Domains))
	for _, d := range opts.Domains {
		d = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(d), "@")))
		if d == "" || strings.ContainsAny(d, "@ \t\r\n<>,") {
			return nil, fmt.Errorf("new mailbox sync: %q is not a domain: %w", d, ErrBadInput)
		}
		domains = append(domains, d)
	}
	if opts.Every < 0 || opts.Window < 0 || opts.MaxAge < 0 || opts.PerTick < 0 {
		return nil, fmt.Errorf("new mailbox sync: negative interval or bound: %w", ErrBadInput)
	}
	if opts.Every == 0 {
		opts.Every = DefaultMailboxEvery
	}
	if opts.Window == 0 {
		opts.Window = DefaultMailboxWindow
	}
	if opts.MaxAge == 0 {
		opts.MaxAge = DefaultMailboxMaxAge
	}
	if opts.PerTick == 0 {
		opts.PerTick = DefaultMailboxPerTick
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &MailboxSync{store: store, zones: zones, opts: opts, domains: domains, noMailbox: map[string]time.Time{}}, nil
}

// Run passes at once and then every opts.Every until ctx ends, logging what each pass did.
func (s *MailboxSync) Run(ctx context.Context) {
	t := time.NewTicker(s.opts.Every)
	defer t.Stop()
	for {
		st, err := s.Sync(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			s.opts.Log.Warn("mailbox time zones: pass failed", "err", err, "looked", st.Looked, "saved", st.Saved)
		case st.Looked > 0:
			s.opts.Log.Info("mailbox time zones", "looked", st.Looked, "saved", st.Saved, "no_mailbox", st.NoMailbox, "failed", st.Failed)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sync makes one pass: it reads the mailbox zones of up to opts.PerTick colleagues lacking a fresh one
// and saves them. A failing address is logged and skipped; a failing store read, or a run of failed
// lookups (Graph or the credential down for everyone), ends the pass with an error.
// Run calls it; it is not safe to call concurrently with Run.
func (s *MailboxSync) Sync(ctx context.Context) (MailboxSyncStats, error) {
	var st MailboxSyncStats
	now := s.opts.Now().UTC()
	for a, until := range s.noMailbox {
		if !now.Before(until) {
			delete(s.noMailbox, a)
		}
	}
	q := ColleagueQuery{Domains: s.domains, Since: now.Add(-s.opts.Window), StaleBefore: now.Add(-s.opts.MaxAge), Limit: s.opts.PerTick}
	inRow := 0
	for {
		page, err := s.store.Colleagues(ctx, q)
		if err != nil {
			return st, fmt.Errorf("mailbox sync: colleagues to look up: %w", err)
		}
		for _, addr := range page {
			if st.Looked == s.opts.PerTick || inRow == maxFailuresInRow {
				break
			}
			if err := ctx.Err(); err != nil {
				return st, err
			}
			q.After = addr
			if _, skip := s.noMailbox[addr]; skip {
				continue
			}
			st.Looked++
			if s.lookUp(ctx, addr, now, &st) {
				inRow = 0
			} else {
				inRow++
			}
		}
		switch {
		case inRow == maxFailuresInRow:
			return st, fmt.Errorf("mailbox sync: %d lookups in a row failed, pass ended early", inRow)
		case st.Looked == s.opts.PerTick || len(page) < q.Limit:
			return st, nil
		}
	}
}

// lookUp reads and saves one address's zone, reporting whether Graph and the store answered.
func (s *MailboxSync) lookUp(ctx context.Context, addr string, now time.Time, st *MailboxSyncStats) bool {
	loc, err := s.zones.MailboxZone(ctx, addr)
	switch {
	case errors.Is(err, ErrNoMailbox):
		st.NoMailbox++
		s.noMailbox[addr] = now.Add(noMailboxFor)
		return true
	case err != nil:
		st.Failed++
		s.opts.Log.Warn("mailbox time zones: lookup failed", "recipient", addr, "err", err)
		return false
	}
	if err := s.store.SaveProfile(ctx, Profile{Recipient: addr, Location: loc, Source: SourceMailbox}, now); err != nil {
		st.Failed++
		s.opts.Log.Warn("mailbox time zones: save failed", "recipient", addr, "err", err)
		return !errors.Is(err, ErrBadInput) // a zone the store refuses is the mailbox's fault, not Graph's
	}
	st.Saved++
	return true
}
