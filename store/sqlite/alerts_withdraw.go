package sqlite

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/engage-email/engage/alerts"
	"github.com/engage-email/engage/followed"
)

// relabelledAlertsSQL reads the recent alerts about events (indexes alerts_first_open_at and
// alerts_click_at) not withdrawn yet
// and keeps those whose event is a machine's now: for a FIRST_OPEN alert under its FirstOpenKey (the
// recipient index is the key's tail), the recipient's opens at the alert's time, all labelled machine
// (event_index); for a click or attachment alert, keyed "event:<id>", that event.
var relabelledAlertsSQL = `SELECT * FROM (
	SELECT ` + prefixed("a.", alertColumns) + `, (SELECT m.reason FROM events m
			WHERE m.seq IN ` + eventsOf("a.message_id", "at = a.at") + ` AND m.recipient = ` + keyRecipient + `
				AND m.kind = 'OPENED' AND m.machine = 1 ORDER BY m.id LIMIT 1) AS reason
		FROM alerts a INDEXED BY alerts_first_open_at
		WHERE a.kind = 'FIRST_OPEN' AND a.at >= ?1 AND a.key = 'first_open:' || a.message_id || ':' || ` + keyRecipient + `
			AND NOT EXISTS (SELECT 1 FROM events p WHERE p.seq IN ` + eventsOf("a.message_id", "at = a.at") + `
				AND p.recipient = ` + keyRecipient + ` AND p.kind = 'OPENED' AND p.machine = 0)
	UNION ALL
	SELECT ` + prefixed("a.", alertColumns) + `, e.reason
		FROM alerts a INDEXED BY alerts_click_at JOIN events e ON e.id = substr(a.key, 7)
		WHERE a.kind IN ('LINK_CLICKED', 'ATTACHMENT_OPENED') AND a.at >= ?1 AND a.key LIKE 'event:%' AND e.machine = 1
			AND NOT EXISTS (SELECT 1 FROM alerts w WHERE w.key = 'withdrawn:' || a.id)
	) WHERE reason IS NOT NULL
	ORDER BY at, seq
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

// RelabelledAlerts implements alerts.Store.
func (db *DB) RelabelledAlerts(ctx context.Context, since time.Time, limit int) ([]alerts.Withdrawal, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("sqlite: relabelled alerts: %w: limit %d", followed.ErrBadInput, limit)
	}
	rows, err := db.read.QueryContext(ctx, relabelledAlertsSQL, since.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: relabelled alerts: %w", err)
	}
	out := []alerts.Withdrawal{}
	for rows.Next() {
		var w alerts.Withdrawal
		a, err := scanAlert(reasonScanner{rows, &w.Reason})
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("sqlite: relabelled alerts: %w", err)
		}
		w.Alert = a
		out = append(out, w)
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("sqlite: relabelled alerts: %w", err)
	}
	return out, nil
}

// reasonScanner scans an alert's columns followed by one more, the machine reason.
type reasonScanner struct {
	row interface{ Scan(...any) error }
	dst *string
}

func (r reasonScanner) Scan(dest ...any) error { return r.row.Scan(append(dest, r.dst)...) }

// WithdrawAlerts implements alerts.Store: a FIRST_OPEN alert's key moves to "first_open_withdrawn:<id>",
// freeing FirstOpenKey for the recipient's real first open; the withdrawal's own key makes a second
// withdrawal of any alert store nothing.
func (db *DB) WithdrawAlerts(ctx context.Context, ws []alerts.Withdrawal) ([]alerts.Alert, error) {
	var stored []alerts.Alert
	for _, w := range ws {
		as, err := db.withdraw(ctx, w)
		if err != nil {
			return stored, fmt.Errorf("sqlite: withdraw alert %s: %w", w.Alert.ID, err)
		}
		stored = append(stored, as...)
	}
	return stored, nil
}

func (db *DB) withdraw(ctx context.Context, w alerts.Withdrawal) ([]alerts.Alert, error) {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	if w.Alert.Kind == alerts.FirstOpen {
		if _, err := tx.ExecContext(ctx, "UPDATE alerts SET key = 'first_open_withdrawn:' || id WHERE id = ? AND key = ?",
			w.Alert.ID, w.Alert.Key); err != nil {
			return nil, err
		}
	}
	as, err := insertAlerts(ctx, tx, []alerts.Alert{w.By})
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	return as, nil
}
