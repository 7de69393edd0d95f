package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/engage-email/engage/followed"
)

var _ followed.LabelStore = (*DB)(nil)

// linkKey and audienceKey name what a relabel recounts.
type linkKey struct {
	message string
	link    int
}

type audienceKey struct {
	message   string
	recipient int
	what      string
}

// relabelled is a stored person's event that a relabel turns into a machine's.
type relabelled struct {
	id, message string
	kind        followed.EventKind
	at          int64
	recipient   int
	link        int
}

// relabelDelta is what relabelling takes from one message's counters.
type relabelDelta struct {
	opens, clicks, attachmentOpens, uniqueOpens, uniqueClicks int
	opensMoved                                                bool
}

// Relabel implements followed.Store in one immediate transaction: flip the events, move the counters,
// then settle each audience entry the flipped events may have claimed.
func (db *DB) Relabel(ctx context.Context, rs []followed.Relabel) error {
	if err := followed.CheckRelabels(rs); err != nil {
		return fmt.Errorf("sqlite: relabel: %w", err)
	}
	if len(rs) == 0 {
		return nil
	}
	byID := make(map[string]followed.Relabel, len(rs))
	ids := make([]any, 0, len(rs))
	for _, r := range rs {
		if _, dup := byID[r.EventID]; !dup {
			byID[r.EventID] = r
			ids = append(ids, r.EventID)
		}
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: relabel: %w", err)
	}
	defer tx.Rollback()

	evs, err := personEvents(ctx, tx, ids)
	if err != nil {
		return fmt.Errorf("sqlite: relabel: %w", err)
	}
	if len(evs) == 0 {
		return nil
	}
	deltas := map[string]*relabelDelta{}
	var order []string
	links := map[linkKey]*[2]int{}
	var linkOrder []linkKey
	keys := map[audienceKey]bool{}
	var keyOrder []audienceKey
	touch := func(k audienceKey) {
		if !keys[k] {
			keys[k] = true
			keyOrder = append(keyOrder, k)
		}
	}
	for _, ev := range evs {
		r := byID[ev.id]
		if _, err := tx.ExecContext(ctx, "UPDATE events SET machine = 1, reason = ?, rule = ? WHERE id = ?",
			r.Reason, r.Rule, ev.id); err != nil {
			return fmt.Errorf("sqlite: relabel event %s: %w", ev.id, err)
		}
		d := deltas[ev.message]
		if d == nil {
			d = &relabelDelta{}
			deltas[ev.message] = d
			order = append(order, ev.message)
		}
		switch ev.kind {
		case followed.Opened:
			d.opens++
			d.opensMoved = true
			touch(audienceKey{ev.message, ev.recipient, "open"})
		case followed.LinkClicked:
			d.clicks++
			touch(audienceKey{ev.message, ev.recipient, "click"})
			if ev.link >= 0 {
				touch(audienceKey{ev.message, ev.recipient, "link:" + strconv.Itoa(ev.link)})
				lk := linkKey{ev.message, ev.link}
				if links[lk] == nil {
					links[lk] = &[2]int{}
					linkOrder = append(linkOrder, lk)
				}
				links[lk][0]++
			}
		case followed.AttachmentOpened:
			d.attachmentOpens++
		}
	}
	for _, k := range keyOrder {
		gone, err := settleAudience(ctx, tx, k)
		if err != nil {
			return fmt.Errorf("sqlite: relabel: audience of %s: %w", k.message, err)
		}
		if !gone {
			continue
		}
		switch {
		case k.what == "open":
			deltas[k.message].uniqueOpens++
		case k.what == "click":
			deltas[k.message].uniqueClicks++
		default:
			link, _ := strconv.Atoi(strings.TrimPrefix(k.what, "link:"))
			links[linkKey{k.message, link}][1]++
		}
	}
	for _, id := range order {
		if err := moveCounters(ctx, tx, id, deltas[id]); err != nil {
			return fmt.Errorf("sqlite: relabel: counters of %s: %w", id, err)
		}
	}
	for _, k := range linkOrder {
		l := links[k]
		if _, err := tx.ExecContext(ctx, `UPDATE links SET clicks = max(0, clicks - ?), unique_clicks = max(0, unique_clicks - ?)
			WHERE message_id = ? AND idx = ?`, l[0], l[1], k.message, k.link); err != nil {
			return fmt.Errorf("sqlite: relabel: clicks of link %d of %s: %w", k.link, k.message, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: relabel: commit: %w", err)
	}
	return nil
}

// personEvents returns the events among ids that a relabel can move: a person's opens and clicks.
func personEvents(ctx context.Context, tx *sql.Tx, ids []any) ([]relabelled, error) {
	var out []relabelled
	err := chunks(len(ids), func(lo, hi int) error {
		rows, err := tx.QueryContext(ctx, `SELECT id, message_id, kind, at, recipient, link FROM events
			WHERE machine = 0 AND kind IN ('OPENED', 'LINK_CLICKED', 'ATTACHMENT_OPENED') AND id IN (`+
			strings.TrimSuffix(strings.Repeat("?,", hi-lo), ",")+") ORDER BY at, id", ids[lo:hi]...)
		if err != nil {
			return fmt.Errorf("events to relabel: %w", err)
		}
		for rows.Next() {
			var e relabelled
			if err := rows.Scan(&e.id, &e.message, &e.kind, &e.at, &e.recipient, &e.link); err != nil {
				rows.Close()
				return fmt.Errorf("events to relabel: %w", err)
			}
			out = append(out, e)
		}
		return closeRows(rows)
	})
	return out, err
}

// audienceFilter selects the events that can claim an audience key.
func audienceFilter(k audienceKey) (string, []any) {
	of := "seq IN " + eventsOf("?", "") + " AND recipient = ?"
	switch {
	case k.what == "open":
		return of + " AND kind = 'OPENED'", []any{k.message, k.message, k.recipient}
	case k.what == "click":
		return of + " AND kind = 'LINK_CLICKED' AND link >= 0", []any{k.message, k.message, k.recipient}
	default:
		link, _ := strconv.Atoi(strings.TrimPrefix(k.what, "link:"))
		return of + " AND kind = 'LINK_CLICKED' AND link = ?", []any{k.message, k.message, k.recipient, link}
	}
}

// settleAudience keeps an audience entry whose first event is still a person's (or was purged by
// retention), passes it to the next person's event when its first was relabelled, and deletes it
// when no person's event is left; gone reports a deletion.
func settleAudience(ctx context.Context, tx *sql.Tx, k audienceKey) (gone bool, err error) {
	var at int64
	err = tx.QueryRowContext(ctx, "SELECT at FROM audience WHERE message_id = ? AND recipient = ? AND what = ?",
		k.message, k.recipient, k.what).Scan(&at)
	if err == sql.ErrNoRows {
		return false, nil // erased, or never claimed
	}
	if err != nil {
		return false, err
	}
	where, args := audienceFilter(k)
	var personFirst sql.NullInt64
	var claimantRelabelled bool
	if err := tx.QueryRowContext(ctx, `SELECT (SELECT min(at) FROM events WHERE `+where+` AND machine = 0),
		EXISTS (SELECT 1 FROM events WHERE `+where+` AND machine = 1 AND at = ?)`,
		append(append(append([]any{}, args...), args...), at)...).Scan(&personFirst, &claimantRelabelled); err != nil {
		return false, err
	}
	switch {
	case personFirst.Valid && personFirst.Int64 <= at, !claimantRelabelled:
		return false, nil
	case personFirst.Valid:
		_, err = tx.ExecContext(ctx, "UPDATE audience SET at = ? WHERE message_id = ? AND recipient = ? AND what = ?",
			personFirst.Int64, k.message, k.recipient, k.what)
		return false, err
	default:
		_, err = tx.ExecContext(ctx, "DELETE FROM audience WHERE message_id = ? AND recipient = ? AND what = ?",
			k.message, k.recipient, k.what)
		return err == nil, err
	}
}

// moveCounters takes a message's relabelled events out of its person's counters and into the machine
// ones; when opens moved, its first and last open are read again from what remains a person's.
func moveCounters(ctx context.Context, tx *sql.Tx, id string, d *relabelDelta) error {
	if _, err := tx.ExecContext(ctx, `UPDATE counters SET opens = max(0, opens - ?), machine_opens = machine_opens + ?,
		clicks = max(0, clicks - ?), machine_clicks = machine_clicks + ?, attachment_opens = max(0, attachment_opens - ?),
		unique_opens = max(0, unique_opens - ?), unique_clicks = max(0, unique_clicks - ?) WHERE message_id = ?`,
		d.opens, d.opens, d.clicks, d.clicks+d.attachmentOpens, d.attachmentOpens, d.uniqueOpens, d.uniqueClicks, id); err != nil {
		return err
	}
	if !d.opensMoved {
		return nil
	}
	// Audience rows outlive the retention purge, so they bound the first and last open when the
	// events themselves are gone.
	_, err := tx.ExecContext(ctx, `UPDATE counters SET
		first_opened_at = (SELECT min(at) FROM audience WHERE message_id = ?1 AND what = 'open'),
		last_opened_at = (SELECT max(at) FROM (
			SELECT at FROM events WHERE seq IN `+eventsOf("?1", "")+` AND kind = 'OPENED' AND machine = 0
			UNION ALL SELECT at FROM audience WHERE message_id = ?1 AND what = 'open'))
		WHERE message_id = ?1`, id)
	return err
}

// SentTimes implements followed.LabelStore from the delivery jobs that recorded a send.
func (db *DB) SentTimes(ctx context.Context, messageIDs []string) (map[string]time.Time, error) {
	out := make(map[string]time.Time, len(messageIDs))
	ids := make([]any, len(messageIDs))
	for i, id := range messageIDs {
		ids[i] = id
	}
	err := chunks(len(ids), func(lo, hi int) error {
		rows, err := db.read.QueryContext(ctx, `SELECT message_id, sent_at FROM delivery_jobs
			WHERE sent_at IS NOT NULL AND message_id IN (`+strings.TrimSuffix(strings.Repeat("?,", hi-lo), ",")+")", ids[lo:hi]...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			var at int64
			if err := rows.Scan(&id, &at); err != nil {
				rows.Close()
				return err
			}
			out[id] = time.UnixMilli(at).UTC()
		}
		return closeRows(rows)
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: send times of %d messages: %w", len(messageIDs), err)
	}
	return out, nil
}

// EarlyOpens implements followed.LabelStore: the events since the cursor in time order (events_at),
// of which it keeps a person's opens. An action of the recipient's before the open (a click, then the
// images loaded) counts as activity at the open's own time.
func (db *DB) EarlyOpens(ctx context.Context, q followed.EarlyOpenQuery) ([]followed.EarlyOpen, error) {
	if q.Limit <= 0 || q.Within < 0 {
		return nil, fmt.Errorf("sqlite: early opens: %w: limit %d, within %s", followed.ErrBadInput, q.Limit, q.Within)
	}
	var afterAt int64 = -1 << 62
	afterID := ""
	if q.After != nil {
		afterAt, afterID = q.After.At.UnixMilli(), q.After.ID
	}
	rows, err := db.read.QueryContext(ctx, `SELECT e.id, e.message_id, e.at, e.recipient, e.link, e.url, e.ip, e.user_agent,
			e.method, e.device_type, e.device_os, e.device_client, coalesce(j.sent_at, m.created_at),
			(SELECT max(CASE WHEN (l.at, l.id) > (e.at, e.id) THEN l.at ELSE e.at END) FROM events l
				WHERE l.seq IN `+eventsOf("e.message_id", "")+` AND l.recipient = e.recipient AND l.machine = 0
				AND l.kind NOT IN ('AUTO_REPLIED', 'BOUNCED') AND ((l.at, l.id) > (e.at, e.id) OR l.kind != 'OPENED'))
		FROM events e INDEXED BY events_at
		JOIN messages m ON m.id = e.message_id
		LEFT JOIN delivery_jobs j ON j.message_id = e.message_id
		WHERE e.at >= ?1 AND e.at < ?3 AND (e.at > ?1 OR e.id > ?2)
			AND e.kind = 'OPENED' AND e.machine = 0 AND e.reason = ''
			AND abs(e.at - coalesce(j.sent_at, m.created_at)) <= ?4
		ORDER BY e.at, e.id LIMIT ?5`, afterAt, afterID, q.Before.UnixMilli(), q.Within.Milliseconds(), q.Limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: early opens: %w", err)
	}
	var out []followed.EarlyOpen
	for rows.Next() {
		var o followed.EarlyOpen
		e := &o.Event
		var at, sent int64
		var later sql.NullInt64
		if err := rows.Scan(&e.ID, &e.MessageID, &at, &e.Recipient, &e.Link, &e.URL, &e.IP, &e.UserAgent, &e.Method,
			&e.Device.Type, &e.Device.OS, &e.Device.Client, &sent, &later); err != nil {
			rows.Close()
			return nil, fmt.Errorf("sqlite: early opens: %w", err)
		}
		e.Kind, e.At = followed.Opened, time.UnixMilli(at).UTC()
		o.SentAt, o.LastActivity = time.UnixMilli(sent).UTC(), fromMillis(later)
		out = append(out, o)
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("sqlite: early opens: %w", err)
	}
	return out, nil
}
