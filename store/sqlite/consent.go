package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/engage-email/engage/consent"
	"github.com/engage-email/engage/followed"
)

var _ consent.Store = (*DB)(nil)

// Settings implements consent.Store.
func (db *DB) Settings(ctx context.Context) (consent.Settings, error) {
	var body string
	err := db.read.QueryRowContext(ctx, "SELECT body FROM consent_settings WHERE id = 1").Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return consent.Settings{}, fmt.Errorf("sqlite: settings: %w", followed.ErrNotFound)
	}
	if err != nil {
		return consent.Settings{}, fmt.Errorf("sqlite: settings: %w", err)
	}
	// Start from the defaults, so that a setting added after this row was saved has its default.
	s := consent.DefaultSettings()
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		return consent.Settings{}, fmt.Errorf("sqlite: settings: %w", err)
	}
	return s, nil
}

// SaveSettings implements consent.Store.
func (db *DB) SaveSettings(ctx context.Context, s consent.Settings, a consent.AuditEntry) error {
	body, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("sqlite: save settings: %w", err)
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: save settings: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO consent_settings (id, body, updated_at) VALUES (1, ?, ?)
		ON CONFLICT (id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at`, string(body), a.At.UnixMilli()); err != nil {
		return fmt.Errorf("sqlite: save settings: %w", err)
	}
	if err := insertAudit(ctx, tx, a); err != nil {
		return fmt.Errorf("sqlite: save settings: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: save settings: commit: %w", err)
	}
	return nil
}

func insertAudit(ctx context.Context, tx *sql.Tx, a consent.AuditEntry) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO audit_log (at, actor, action, target, before_value, after_value)
		VALUES (?,?,?,?,?,?)`, a.At.UnixMilli(), a.Actor, a.Action, a.Target, a.Before, a.After)
	if err != nil {
		return fmt.Errorf("audit %s of %s: %w", a.Action, a.Target, err)
	}
	return nil
}

func insertPreference(ctx context.Context, tx *sql.Tx, e consent.Entry) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO follow_preferences (target, preference, at, set_by, source, note)
		VALUES (?,?,?,?,?,?)`, e.Target, string(e.Preference), e.At.UnixMilli(), e.By, e.Source, e.Note)
	if err != nil {
		return fmt.Errorf("preference of %s: %w", e.Target, err)
	}
	return nil
}

// AddPreferences implements consent.Store.
func (db *DB) AddPreferences(ctx context.Context, entries []consent.Entry, audit []consent.AuditEntry) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: add preferences: %w", err)
	}
	defer tx.Rollback()
	for _, e := range entries {
		if err := insertPreference(ctx, tx, e); err != nil {
			return fmt.Errorf("sqlite: add preferences: %w", err)
		}
		if e.Preference == consent.DoNotAllow {
			if err := stopTracking(ctx, tx, e); err != nil {
				return fmt.Errorf("sqlite: add preferences: %w", err)
			}
		}
	}
	for _, a := range audit {
		if err := insertAudit(ctx, tx, a); err != nil {
			return fmt.Errorf("sqlite: add preferences: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: add preferences: commit: %w", err)
	}
	return nil
}

// stopTracking marks every message sent to e's target (an address, or every address of a domain) so
// that its events for that recipient, or all of them for a shared render, are no longer recorded.
func stopTracking(ctx context.Context, tx *sql.Tx, e consent.Entry) error {
	match := "r.email = ?1" // recipients are stored normalised, in lower case (index recipients_email)
	if !strings.Contains(e.Target, "@") {
		match = "substr(r.email, instr(r.email, '@') + 1) = ?1" // index recipients_domain
	}
	if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO untracked (message_id, recipient, since)
		SELECT r.message_id, CASE WHEN m.individual THEN r.idx ELSE -1 END, ?2
		FROM recipients r JOIN messages m ON m.id = r.message_id WHERE `+match,
		strings.ToLower(e.Target), e.At.UnixMilli()); err != nil {
		return fmt.Errorf("stop tracking %s: %w", e.Target, err)
	}
	return nil
}

const preferenceColumns = "seq, target, preference, at, set_by, source, note"

func scanPreference(rows *sql.Rows) (consent.Entry, error) {
	var e consent.Entry
	var at int64
	err := rows.Scan(&e.Seq, &e.Target, &e.Preference, &at, &e.By, &e.Source, &e.Note)
	e.At = time.UnixMilli(at).UTC()
	return e, err
}

// LatestPreferences implements consent.Store.
func (db *DB) LatestPreferences(ctx context.Context, targets []string) (map[string]consent.Entry, error) {
	out := map[string]consent.Entry{}
	for len(targets) > 0 {
		chunk := targets[:min(len(targets), 500)]
		targets = targets[len(chunk):]
		args := make([]any, len(chunk))
		for i, t := range chunk {
			args[i] = t
		}
		rows, err := db.read.QueryContext(ctx, `SELECT `+preferenceColumns+` FROM follow_preferences p
			WHERE target IN (?`+strings.Repeat(",?", len(chunk)-1)+`)
			AND seq = (SELECT max(seq) FROM follow_preferences q WHERE q.target = p.target)`, args...)
		if err != nil {
			return nil, fmt.Errorf("sqlite: latest preferences: %w", err)
		}
		for rows.Next() {
			e, err := scanPreference(rows)
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("sqlite: latest preferences: %w", err)
			}
			out[e.Target] = e
		}
		if err := closeRows(rows); err != nil {
			return nil, fmt.Errorf("sqlite: latest preferences: %w", err)
		}
	}
	return out, nil
}

// PreferenceHistory implements consent.Store.
func (db *DB) PreferenceHistory(ctx context.Context, target string) ([]consent.Entry, error) {
	rows, err := db.read.QueryContext(ctx, "SELECT "+preferenceColumns+" FROM follow_preferences WHERE target = ? ORDER BY seq DESC", target)
	if err != nil {
		return nil, fmt.Errorf("sqlite: preference history of %s: %w", target, err)
	}
	defer rows.Close()
	out := []consent.Entry{}
	for rows.Next() {
		e, err := scanPreference(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: preference history of %s: %w", target, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: preference history of %s: %w", target, err)
	}
	return out, nil
}

// Audit implements consent.Store.
func (db *DB) Audit(ctx context.Context, q consent.AuditQuery) ([]consent.AuditEntry, error) {
	query := "SELECT seq, at, actor, action, target, before_value, after_value FROM audit_log WHERE 1 = 1"
	var args []any
	if q.Target != "" {
		query, args = query+" AND target = ?", append(args, q.Target)
	}
	if q.BeforeSeq > 0 {
		query, args = query+" AND seq < ?", append(args, q.BeforeSeq)
	}
	query, args = query+" ORDER BY seq DESC LIMIT ?", append(args, q.Limit)
	rows, err := db.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: audit log: %w", err)
	}
	defer rows.Close()
	var out []consent.AuditEntry
	for rows.Next() {
		var a consent.AuditEntry
		var at int64
		if err := rows.Scan(&a.Seq, &at, &a.Actor, &a.Action, &a.Target, &a.Before, &a.After); err != nil {
			return nil, fmt.Errorf("sqlite: audit log: %w", err)
		}
		a.At = time.UnixMilli(at).UTC()
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: audit log: %w", err)
	}
	return out, nil
}

// AddSuppression implements consent.Store.
func (db *DB) AddSuppression(ctx context.Context, s consent.Suppression) error {
	if _, err := db.write.ExecContext(ctx, `INSERT INTO suppressions (email, until, reason, at) VALUES (?,?,?,?)
		ON CONFLICT (email) DO UPDATE SET until = excluded.until, reason = excluded.reason, at = excluded.at`,
		s.Email, millis(s.Until), s.Reason, s.At.UnixMilli()); err != nil {
		return fmt.Errorf("sqlite: suppress %s: %w", s.Email, err)
	}
	return nil
}

// LiftSuppression implements consent.Store.
func (db *DB) LiftSuppression(ctx context.Context, email string, a consent.AuditEntry) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: lift suppression of %s: %w", email, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, "DELETE FROM suppressions WHERE email = ?", email)
	if err != nil {
		return fmt.Errorf("sqlite: lift suppression of %s: %w", email, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("sqlite: lift suppression of %s: %w", email, followed.ErrNotFound)
	}
	if err := insertAudit(ctx, tx, a); err != nil {
		return fmt.Errorf("sqlite: lift suppression of %s: %w", email, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: lift suppression of %s: commit: %w", email, err)
	}
	return nil
}

// Suppressions implements consent.Store.
func (db *DB) Suppressions(ctx context.Context, emails []string) (map[string]consent.Suppression, error) {
	out := map[string]consent.Suppression{}
	for len(emails) > 0 {
		chunk := emails[:min(len(emails), 500)]
		emails = emails[len(chunk):]
		args := make([]any, len(chunk))
		for i, e := range chunk {
			args[i] = e
		}
		rows, err := db.read.QueryContext(ctx, "SELECT email, until, reason, at FROM suppressions WHERE email IN (?"+
			strings.Repeat(",?", len(chunk)-1)+")", args...)
		if err != nil {
			return nil, fmt.Errorf("sqlite: suppressions: %w", err)
		}
		for rows.Next() {
			var s consent.Suppression
			var until sql.NullInt64
			var at int64
			if err := rows.Scan(&s.Email, &until, &s.Reason, &at); err != nil {
				rows.Close()
				return nil, fmt.Errorf("sqlite: suppressions: %w", err)
			}
			s.Until, s.At = fromMillis(until), time.UnixMilli(at).UTC()
			out[s.Email] = s
		}
		if err := closeRows(rows); err != nil {
			return nil, fmt.Errorf("sqlite: suppressions: %w", err)
		}
	}
	return out, nil
}

// PurgeEvents implements consent.Store: the oldest events first, through the index on at.
func (db *DB) PurgeEvents(ctx context.Context, before time.Time, limit int) (int, error) {
	res, err := db.write.ExecContext(ctx, `DELETE FROM events WHERE seq IN (
		SELECT seq FROM events WHERE at < ? ORDER BY at LIMIT ?)`, before.UnixMilli(), limit)
	if err != nil {
		return 0, fmt.Errorf("sqlite: purge events before %d: %w", before.UnixMilli(), err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlite: purge events: %w", err)
	}
	return int(n), nil
}

// ForgetConsent implements consent.Store.
func (db *DB) ForgetConsent(ctx context.Context, email, erased string, keep *consent.Entry, a consent.AuditEntry) ([]consent.Count, error) {
	if err := db.scrub(ctx, false); err != nil {
		return nil, err
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: forget %s: %w", erased, err)
	}
	defer tx.Rollback()
	steps := []struct {
		what  string
		query string
		args  []any
	}{
		{"preferences", "DELETE FROM follow_preferences WHERE target = ?", []any{email}},
		{"suppressions", "DELETE FROM suppressions WHERE email = ?", []any{email}},
	}
	var counts []consent.Count
	for _, s := range steps {
		res, err := tx.ExecContext(ctx, s.query, s.args...)
		if err != nil {
			return nil, fmt.Errorf("sqlite: forget %s: %s: %w", erased, s.what, err)
		}
		n, _ := res.RowsAffected()
		counts = append(counts, consent.Count{What: s.what, N: int(n)})
	}
	audited, err := hashInAudit(ctx, tx, email, erased)
	if err != nil {
		return nil, fmt.Errorf("sqlite: forget %s: audit entries: %w", erased, err)
	}
	counts = append(counts, consent.Count{What: "audit entries", N: audited})
	if keep != nil {
		if err := insertPreference(ctx, tx, *keep); err != nil {
			return nil, fmt.Errorf("sqlite: forget %s: %w", erased, err)
		}
	}
	if err := insertAudit(ctx, tx, a); err != nil {
		return nil, fmt.Errorf("sqlite: forget %s: %w", erased, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlite: forget %s: commit: %w", erased, err)
	}
	if err := db.scrub(ctx, true); err != nil {
		return nil, err
	}
	return counts, nil
}

// Path is the store's file, for tools and tests that look into it directly.
func (db *DB) Path() string { return db.path }

// scrub makes deletions overwrite what they free and, once an erasure is committed, checkpoints and
// empties the write-ahead log, so that an erased address survives neither in free pages nor in old
// page images. Best effort: a reader holding an old snapshot can delay the truncation.
func (db *DB) scrub(ctx context.Context, after bool) error {
	q := "PRAGMA secure_delete = ON"
	if after {
		q = "PRAGMA wal_checkpoint(TRUNCATE)"
	}
	if _, err := db.write.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("sqlite: %s: %w", q, err)
	}
	return nil
}

// hashInAudit replaces the address with erased in the audit entries that name it, wherever it stands
// alone (consent.ReplaceAddress: inside a longer address it is someone else's), and says how many
// entries changed.
func hashInAudit(ctx context.Context, tx *sql.Tx, email, erased string) (int, error) {
	rows, err := tx.QueryContext(ctx, `SELECT rowid, target, before_value, after_value FROM audit_log
		WHERE instr(lower(target), ?1) OR instr(lower(before_value), ?1) OR instr(lower(after_value), ?1)`, email)
	if err != nil {
		return 0, err
	}
	type entry struct {
		id     int64
		fields [3]string
	}
	var found []entry
	for rows.Next() {
		var e entry
		if err := rows.Scan(&e.id, &e.fields[0], &e.fields[1], &e.fields[2]); err != nil {
			rows.Close()
			return 0, err
		}
		found = append(found, e)
	}
	if err := closeRows(rows); err != nil {
		return 0, err
	}
	n := 0
	for _, e := range found {
		k := 0
		for i, f := range e.fields {
			var m int
			e.fields[i], m = consent.ReplaceAddress(f, email, erased)
			k += m
		}
		if k == 0 {
			continue
		}
		if _, err := tx.ExecContext(ctx, "UPDATE audit_log SET target = ?, before_value = ?, after_value = ? WHERE rowid = ?",
			e.fields[0], e.fields[1], e.fields[2], e.id); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
