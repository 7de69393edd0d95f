package sqlite

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/engage-email/engage/alerts"
	"github.com/engage-email/engage/followed"
)

// relabelledFirstOpensSQL reads the recent first-open alerts (index alerts_first_open_at) still under
// their FirstOpenKey, whose recipient index is the key's tail, and keeps those whose open at the
// alert's time is a machine's now and a person's no longer (index events_message_at).
var relabelledFirstOpensSQL = `SELECT ` + prefixed("a.", alertColumns) + `, (SELECT m.reason FROM events m
		WHERE m.message_id = a.message_id AND m.recipient = ` + keyRecipient + ` AND m.kind = 'OPENED'
			AND m.at = a.at AND m.machine = 1 ORDER BY m.id LIMIT 1) AS reason
	FROM alerts a INDEXED BY alerts_first_open_at
	WHERE a.kind = 'FIRST_OPEN' AND a.at >= ?1 AND a.key = 'first_open:' || a.message_id || ':' || ` + keyRecipient + `
		AND reason IS NOT NULL
		AND NOT EXISTS (SELECT 1 FROM events p WHERE p.message_id = a.message_id AND p.recipient = ` + keyRecipient + `
			AND p.kind = 'OPENED' AND p.at = a.at AND p.machine = 0)
	ORDER BY a.at, a.seq
	LIMIT ?2`

// keyRecipient is the recipient index at the end of a FirstOpenKey, "first_open:<message>:<index>".
const keyRecipient = `CAST(substr(a.key, length(a.message_id) + 13) AS INTEGER)`

// prefixed qualifies each of a comma-separated column list with p.
func prefixed(p, columns string) string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = p + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

// RelabelledFirstOpens implements alerts.Store.
func (db *DB) RelabelledFirstOpens(ctx context.Context, since time.Time, limit int) ([]alerts.Withdrawal, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("sqlite: relabelled first opens: %w: limit %d", followed.ErrBadInput, limit)
	}
	rows, err := db.read.QueryContext(ctx, relabelledFirstOpensSQL, since.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: relabelled first opens: %w", err)
	}
	out := []alerts.Withdrawal{}
	for rows.Next() {
		var w alerts.Withdrawal
		a, err := scanAlert(reasonScanner{rows, &w.Reason})
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("sqlite: relabelled first opens: %w", err)
		}
		w.Alert = a
		out = append(out, w)
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("sqlite: relabelled first opens: %w", err)
	}
	return out, nil
}

// reasonScanner scans an alert's columns followed by one more, the machine reason.
type reasonScanner struct {
	row interface{ Scan(...any) error }
	dst *string
}

func (r reasonScanner) Scan(dest ...any) error { return r.row.Scan(append(dest, r.dst)...) }

// WithdrawFirstOpens implements alerts.Store: moving the withdrawn alert's key to "first_open_withdrawn:<id>" frees
// FirstOpenKey for the recipient's real first open, and a second withdrawal of it finds nothing to move.
func (db *DB) WithdrawFirstOpens(ctx context.Context, ws []alerts.Withdrawal) ([]alerts.Alert, error) {
	var stored []alerts.Alert
	for _, w := range ws {
		tx, err := db.write.BeginTx(ctx, nil)
		if err != nil {
			return stored, fmt.Errorf("sqlite: withdraw alert %s: %w", w.Alert.ID, err)
		}
		res, err := tx.ExecContext(ctx, "UPDATE alerts SET key = 'first_open_withdrawn:' || id WHERE id = ? AND key = ?", w.Alert.ID, w.Alert.Key)
		if err != nil {
			tx.Rollback()
			return stored, fmt.Errorf("sqlite: withdraw alert %s: %w", w.Alert.ID, err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			tx.Rollback()
			continue // withdrawn already, by this instance or another
		}
		as, err := insertAlerts(ctx, tx, []alerts.Alert{w.By})
		if err != nil {
			tx.Rollback()
			return stored, err
		}
		if err := tx.Commit(); err != nil {
			return stored, fmt.Errorf("sqlite: withdraw alert %s: commit: %w", w.Alert.ID, err)
		}
		stored = append(stored, as...)
	}
	return stored, nil
}
