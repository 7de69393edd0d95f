package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/engage-email/engage/followed"
)

// unannouncedFirstOpensSQL starts from a person's opens in the window (index events_at), keeps those
// that claimed their recipient's audience 'open' entry (a relabel moves the entry to the person's next
// open or deletes it, so a machine's open never matches) and have no alert under the key alerts
// builds (alerts.FirstOpenKey). Of several opens at the claiming millisecond the lowest id stands for
// the open, and its device is reported (SQLite takes bare columns from the row min picks).
const unannouncedFirstOpensSQL = `SELECT e.message_id, e.recipient, e.at, min(e.id), e.device_type, e.device_os,
		e.device_client, m.owner, m.subject, CASE WHEN m.individual THEN coalesce(r.email, '') ELSE '' END
	FROM events e INDEXED BY events_at
	JOIN audience a ON a.message_id = e.message_id AND a.recipient = e.recipient AND a.what = 'open' AND a.at = e.at
	JOIN messages m ON m.id = e.message_id
	LEFT JOIN recipients r ON r.message_id = e.message_id AND r.idx = e.recipient
	WHERE e.at >= ?1 AND e.kind = 'OPENED' AND e.machine = 0
		AND NOT EXISTS (SELECT 1 FROM alerts WHERE alerts.key = 'first_open:' || e.message_id || ':' || e.recipient)
	GROUP BY e.message_id, e.recipient
	ORDER BY e.at, e.message_id, e.recipient
	LIMIT ?2`

// UnannouncedFirstOpens implements alerts.Store.
func (db *DB) UnannouncedFirstOpens(ctx context.Context, since time.Time, limit int) ([]followed.FirstOpen, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("sqlite: unannounced first opens: %w: limit %d", followed.ErrBadInput, limit)
	}
	rows, err := db.read.QueryContext(ctx, unannouncedFirstOpensSQL, since.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: unannounced first opens: %w", err)
	}
	out := []followed.FirstOpen{}
	for rows.Next() {
		var fo followed.FirstOpen
		var at int64
		var id, devType string
		if err := rows.Scan(&fo.MessageID, &fo.Recipient, &at, &id, &devType, &fo.Device.OS, &fo.Device.Client,
			&fo.Owner, &fo.Subject, &fo.Email); err != nil {
			rows.Close()
			return nil, fmt.Errorf("sqlite: unannounced first opens: %w", err)
		}
		fo.At, fo.Device.Type = time.UnixMilli(at).UTC(), followed.DeviceType(devType)
		out = append(out, fo)
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("sqlite: unannounced first opens: %w", err)
	}
	return out, nil
}
