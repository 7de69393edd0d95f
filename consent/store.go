package consent

import (
	"context"
	"time"
)

// Store is what consent needs from a backend. Every method is atomic: a change and its audit entries
// commit together or not at all.
type Store interface {
	// Settings returns the saved settings, or followed.ErrNotFound when none were ever saved.
	Settings(ctx context.Context) (Settings, error)
	// SaveSettings replaces the settings and appends a to the audit log.
	SaveSettings(ctx context.Context, s Settings, a AuditEntry) error
	// AddPreferences appends entries to their targets' histories and audit to the log, all or none. A
	// DO_NOT_ALLOW entry also stops, in the same transaction and for good, the recording of tracking
	// events (opens, clicks, attachment opens) of mail already sent to its target (an address whatever its case, or a domain's addresses): that
	// recipient's events of an individual render, every event of a shared one. A later ALLOW applies to
	// new mail only.
	AddPreferences(ctx context.Context, entries []Entry, audit []AuditEntry) error
	// LatestPreferences returns the entry in force for each of targets that has one.
	LatestPreferences(ctx context.Context, targets []string) (map[string]Entry, error)
	// PreferenceHistory returns a target's entries, newest first.
	PreferenceHistory(ctx context.Context, target string) ([]Entry, error)
	// Audit lists audit entries newest first.
	Audit(ctx context.Context, q AuditQuery) ([]AuditEntry, error)
	// AddSuppression records (or replaces) the suppression of an address.
	AddSuppression(ctx context.Context, s Suppression) error
	// LiftSuppression removes an address's suppression and appends a to the audit log; ErrNotFound
	// when the address is not suppressed.
	LiftSuppression(ctx context.Context, email string, a AuditEntry) error
	// Suppressions returns the suppressions of emails (active or not), by address.
	Suppressions(ctx context.Context, emails []string) (map[string]Suppression, error)
	// PurgeEvents deletes up to limit tracking events older than before and returns how many; counters
	// stay, being aggregates.
	PurgeEvents(ctx context.Context, before time.Time, limit int) (int, error)
	// ForgetConsent erases email from consent's own tables: its preference history and suppression
	// go, audit entries name erased instead, keep (when not nil) is recorded in their place, and a is
	// appended to the log.
	ForgetConsent(ctx context.Context, email, erased string, keep *Entry, a AuditEntry) ([]Count, error)
}

// AuditQuery pages through the audit log; BeforeSeq 0 starts at the newest.
type AuditQuery struct {
	Target    string // "" = every target
	BeforeSeq int64
	Limit     int
}
