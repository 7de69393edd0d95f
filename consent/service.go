package consent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/engage-email/engage/auth"
	"github.com/engage-email/engage/followed"
)

// Options are what a Service may be given beyond its store.
type Options struct {
	// Erasers hold other features' data about recipients; the consent store's own tables and, through
	// a backend's eraser, the followed messages are among them.
	Erasers []Eraser
	Log     *slog.Logger
	Now     func() time.Time
}

// Service applies the organisation's rules on who may be followed and keeps the record of them.
type Service struct {
	store   Store
	erasers []Eraser
	log     *slog.Logger
	now     func() time.Time
	// current is the last settings read, for the tracking hot path, which must not read the store.
	current atomic.Pointer[Settings]
}

var _ followed.Gate = (*Service)(nil)

// NewService returns a Service with the settings loaded.
func NewService(ctx context.Context, store Store, opts Options) (*Service, error) {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Service{store: store, erasers: opts.Erasers, log: opts.Log, now: opts.Now}
	if _, err := s.settings(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func requireAdmin(who auth.Identity, what string) error {
	if !who.Admin {
		return fmt.Errorf("consent: %s: %w", what, auth.Deny(what+" needs an admin"))
	}
	return nil
}

// settings reads the settings in force (the defaults until saved) and caches them.
func (s *Service) settings(ctx context.Context) (Settings, error) {
	st, err := s.store.Settings(ctx)
	if errors.Is(err, followed.ErrNotFound) {
		st, err = DefaultSettings(), nil
	}
	if err != nil {
		return Settings{}, fmt.Errorf("consent: read settings: %w", err)
	}
	s.current.Store(&st)
	return st, nil
}

// Settings returns the settings in force; any signed-in user may read them, so that the add-in can
// say what will be tracked.
func (s *Service) Settings(ctx context.Context, _ auth.Identity) (Settings, error) {
	return s.settings(ctx)
}

// IPStorage is the client address policy as last read, for the tracking endpoints.
func (s *Service) IPStorage() followed.IPStorage {
	if st := s.current.Load(); st != nil {
		return st.IPStorage
	}
	return DefaultSettings().IPStorage
}

// Records says whether events of kind are recorded under the settings as last read, for the tracking
// endpoints: a message sent while a signal was tracked keeps its pixel and links, but once an admin
// turns engagement or that signal off, its hits are answered and no longer kept.
func (s *Service) Records(kind followed.EventKind) bool {
	st := DefaultSettings()
	if cur := s.current.Load(); cur != nil {
		st = *cur
	}
	if !st.Enabled {
		return false
	}
	switch kind {
	case followed.Opened:
		return st.TrackOpens
	case followed.LinkClicked:
		return st.TrackLinks
	case followed.AttachmentOpened:
		return st.TrackAttachments
	}
	return true
}

// UpdateSettings applies an admin's change, validated whole, and audits it.
func (s *Service) UpdateSettings(ctx context.Context, who auth.Identity, c SettingsChange) (Settings, error) {
	if err := requireAdmin(who, "update settings"); err != nil {
		return Settings{}, err
	}
	before, err := s.settings(ctx)
	if err != nil {
		return Settings{}, err
	}
	after := c.apply(before)
	if err := after.Validate(); err != nil {
		return Settings{}, err
	}
	a := AuditEntry{At: s.stamp(), Actor: who.Email, Action: ActionSettings, Target: "settings",
		Before: jsonText(before), After: jsonText(after)}
	if err := s.store.SaveSettings(ctx, after, a); err != nil {
		return Settings{}, fmt.Errorf("consent: save settings: %w", err)
	}
	s.current.Store(&after)
	return after, nil
}

func (s *Service) stamp() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// SetPreference records an admin's "Follow Email" choice for an address or a domain.
func (s *Service) SetPreference(ctx context.Context, who auth.Identity, target string, p Preference, note string) (Entry, error) {
	if err := requireAdmin(who, "set preference"); err != nil {
		return Entry{}, err
	}
	t, err := NormalizeTarget(target)
	if err != nil {
		return Entry{}, err
	}
	if p, err = ParsePreference(string(p)); err != nil {
		return Entry{}, err
	}
	entries, err := s.record(ctx, who, []Row{{Target: t, Preference: p}}, SourceAdmin, ActionPreference, note)
	if err != nil {
		return Entry{}, err
	}
	return entries[0], nil
}

// Import records the preferences of a CSV file (header email_or_domain,preference) all at once: a
// single bad line rejects the file, naming every bad line, and records nothing.
func (s *Service) Import(ctx context.Context, who auth.Identity, csvText string) (int, error) {
	if err := requireAdmin(who, "import preferences"); err != nil {
		return 0, err
	}
	rows, err := ParseCSV(csvText)
	if err != nil {
		return 0, err
	}
	if _, err := s.record(ctx, who, rows, SourceImport, ActionImport, ""); err != nil {
		return 0, err
	}
	return len(rows), nil
}

func (s *Service) record(ctx context.Context, who auth.Identity, rows []Row, source, action, note string) ([]Entry, error) {
	targets := make([]string, len(rows))
	for i, r := range rows {
		targets[i] = r.Target
	}
	latest, err := s.store.LatestPreferences(ctx, targets)
	if err != nil {
		return nil, fmt.Errorf("consent: record preferences: %w", err)
	}
	at := s.stamp()
	entries := make([]Entry, len(rows))
	audit := make([]AuditEntry, len(rows))
	for i, r := range rows {
		entries[i] = Entry{Target: r.Target, Preference: r.Preference, At: at, By: who.Email, Source: source, Note: note}
		before := string(latest[r.Target].Preference)
		audit[i] = AuditEntry{At: at, Actor: who.Email, Action: action, Target: r.Target, Before: before, After: string(r.Preference)}
		latest[r.Target] = entries[i] // a file naming a target twice: the next row's "before" is this one
	}
	if err := s.store.AddPreferences(ctx, entries, audit); err != nil {
		return nil, fmt.Errorf("consent: record preferences: %w", err)
	}
	return entries, nil
}

// History returns an address's or a domain's preference entries, newest first (admins).
func (s *Service) History(ctx context.Context, who auth.Identity, target string) ([]Entry, error) {
	if err := requireAdmin(who, "preference history"); err != nil {
		return nil, err
	}
	t, err := NormalizeTarget(target)
	if err != nil {
		return nil, err
	}
	h, err := s.store.PreferenceHistory(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("consent: history of %s: %w", t, err)
	}
	return h, nil
}

// AuditPage is one page of the audit log.
type AuditPage struct {
	Entries []AuditEntry
	Cursors []string
	HasNext bool
}

// AuditLog pages through admin changes, newest first (admins).
func (s *Service) AuditLog(ctx context.Context, who auth.Identity, first int, after string) (AuditPage, error) {
	if err := requireAdmin(who, "audit log"); err != nil {
		return AuditPage{}, err
	}
	switch {
	case first < 0:
		return AuditPage{}, fmt.Errorf("%w: first must not be negative", followed.ErrBadInput)
	case first == 0 || first > followed.MaxPage:
		first = followed.MaxPage
	}
	var before int64
	if after != "" {
		n, err := strconv.ParseInt(after, 10, 64)
		if err != nil || n <= 0 {
			return AuditPage{}, fmt.Errorf("%w: cursor %q is not from the audit log", followed.ErrBadInput, after)
		}
		before = n
	}
	es, err := s.store.Audit(ctx, AuditQuery{BeforeSeq: before, Limit: first + 1})
	if err != nil {
		return AuditPage{}, fmt.Errorf("consent: audit log: %w", err)
	}
	p := AuditPage{HasNext: len(es) > first}
	if p.HasNext {
		es = es[:first]
	}
	p.Entries = es
	for _, e := range es {
		p.Cursors = append(p.Cursors, strconv.FormatInt(e.Seq, 10))
	}
	return p, nil
}

// Suppress stops following an address until a time (zero: until lifted); the bounce pipeline calls it.
func (s *Service) Suppress(ctx context.Context, email, reason string, until time.Time) error {
	e, err := auth.NormalizeEmail(email)
	if err != nil {
		return fmt.Errorf("%w: %s", followed.ErrBadInput, err)
	}
	if err := s.store.AddSuppression(ctx, Suppression{Email: e, Until: until.UTC(), Reason: reason, At: s.stamp()}); err != nil {
		return fmt.Errorf("consent: suppress %s: %w", e, err)
	}
	return nil
}

// LiftSuppression lets an address be followed again after a bounce was resolved (admins).
func (s *Service) LiftSuppression(ctx context.Context, who auth.Identity, email string) error {
	if err := requireAdmin(who, "lift suppression"); err != nil {
		return err
	}
	e, err := auth.NormalizeEmail(email)
	if err != nil {
		return fmt.Errorf("%w: %s", followed.ErrBadInput, err)
	}
	cur, err := s.store.Suppressions(ctx, []string{e})
	if err != nil {
		return fmt.Errorf("consent: lift suppression of %s: %w", e, err)
	}
	sup, ok := cur[e]
	if !ok {
		return fmt.Errorf("consent: %s is not suppressed: %w", e, followed.ErrNotFound)
	}
	a := AuditEntry{At: s.stamp(), Actor: who.Email, Action: ActionLiftSuppressed, Target: e, Before: jsonText(sup), After: ""}
	if err := s.store.LiftSuppression(ctx, e, a); err != nil {
		return fmt.Errorf("consent: lift suppression of %s: %w", e, err)
	}
	return nil
}
