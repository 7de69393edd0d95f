package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"

	"github.com/engage-email/engage/followed"
)

// messageDelta is what one batch adds to a message's counters.
type messageDelta struct {
	opens, uniqueOpens, clicks, uniqueClicks, attachmentOpens, replies, machineOpens, machineClicks int
	firstOpen, lastOpen                                                                             int64
}

type linkKey struct {
	message string
	link    int
}

type messageInfo struct {
	owner, subject string
	recipients     []string
}

// RecordEvents implements followed.Store: one immediate transaction per batch; the audience table's
// primary key makes "first" a fact the database decides, so concurrent writers (even two processes on
// one file) agree on exactly one first open.
func (db *DB) RecordEvents(ctx context.Context, evs []followed.Event) ([]followed.FirstOpen, error) {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: record events: %w", err)
	}
	defer tx.Rollback()
	insEvent, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO events (id, message_id, kind, at, recipient, link, url,
		ip, user_agent, method, device_type, device_os, device_client, machine, reason, rule)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: record events: %w", err)
	}
	defer insEvent.Close()
	insAudience, err := tx.PrepareContext(ctx, "INSERT OR IGNORE INTO audience (message_id, recipient, what, at) VALUES (?,?,?,?)")
	if err != nil {
		return nil, fmt.Errorf("sqlite: record events: %w", err)
	}
	defer insAudience.Close()

	infos := map[string]*messageInfo{}
	deltas := map[string]*messageDelta{}
	links := map[linkKey]*[2]int{}
	var firsts []followed.FirstOpen
	seen := func(ev followed.Event, what string) (bool, error) {
		res, err := insAudience.ExecContext(ctx, ev.MessageID, ev.Recipient, what, ev.At.UnixMilli())
		if err != nil {
			return false, err
		}
		n, err := res.RowsAffected()
		return n == 1, err
	}
	for _, ev := range evs {
		info, err := db.messageInfo(ctx, tx, infos, ev.MessageID)
		if errors.Is(err, followed.ErrNotFound) {
			continue // a valid token for a message since erased: nothing to attach it to
		}
		if err != nil {
			return nil, fmt.Errorf("sqlite: record events: %w", err)
		}
		at := ev.At.UnixMilli()
		res, err := insEvent.ExecContext(ctx, ev.ID, ev.MessageID, string(ev.Kind), at, ev.Recipient, ev.Link, ev.URL,
			ev.IP, ev.UserAgent, ev.Method, string(ev.Device.Type), ev.Device.OS, ev.Device.Client, ev.Machine, ev.Reason, ev.Rule)
		if err != nil {
			return nil, fmt.Errorf("sqlite: record event %s: %w", ev.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			continue // already stored: a replay
		}
		d := deltas[ev.MessageID]
		if d == nil {
			d = &messageDelta{}
			deltas[ev.MessageID] = d
		}
		switch ev.Kind {
		case followed.Opened:
			if ev.Machine {
				d.machineOpens++
				continue
			}
			d.opens++
			if d.firstOpen == 0 || at < d.firstOpen {
				d.firstOpen = at
			}
			d.lastOpen = max(d.lastOpen, at)
			first, err := seen(ev, "open")
			if err != nil {
				return nil, fmt.Errorf("sqlite: record event %s: %w", ev.ID, err)
			}
			if first {
				d.uniqueOpens++
				fo := followed.FirstOpen{MessageID: ev.MessageID, Owner: info.owner, Subject: info.subject,
					Recipient: ev.Recipient, At: ev.At, Device: ev.Device}
				if ev.Recipient >= 0 && ev.Recipient < len(info.recipients) {
					fo.Email = info.recipients[ev.Recipient]
				}
				firsts = append(firsts, fo)
			}
		case followed.LinkClicked:
			if ev.Machine {
				d.machineClicks++
				continue
			}
			d.clicks++
			first, err := seen(ev, "click")
			if err != nil {
				return nil, fmt.Errorf("sqlite: record event %s: %w", ev.ID, err)
			}
			if first {
				d.uniqueClicks++
			}
			lk := linkKey{ev.MessageID, ev.Link}
			l := links[lk]
			if l == nil {
				l = &[2]int{}
				links[lk] = l
			}
			l[0]++
			if first, err = seen(ev, "link:"+strconv.Itoa(ev.Link)); err != nil {
				return nil, fmt.Errorf("sqlite: record event %s: %w", ev.ID, err)
			}
			if first {
				l[1]++
			}
		case followed.AttachmentOpened:
			if !ev.Machine {
				d.attachmentOpens++
			}
		case followed.Replied:
			d.replies++
		}
	}
	for id, d := range deltas {
		if _, err := tx.ExecContext(ctx, `UPDATE messages SET opens = opens + ?1, unique_opens = unique_opens + ?2,
			clicks = clicks + ?3, unique_clicks = unique_clicks + ?4, attachment_opens = attachment_opens + ?5,
			replies = replies + ?6, machine_opens = machine_opens + ?7, machine_clicks = machine_clicks + ?8,
			first_opened_at = CASE WHEN ?9 = 0 THEN first_opened_at
				WHEN first_opened_at IS NULL OR first_opened_at > ?9 THEN ?9 ELSE first_opened_at END,
			last_opened_at = CASE WHEN ?10 = 0 THEN last_opened_at
				WHEN last_opened_at IS NULL OR last_opened_at < ?10 THEN ?10 ELSE last_opened_at END
			WHERE id = ?11`,
			d.opens, d.uniqueOpens, d.clicks, d.uniqueClicks, d.attachmentOpens, d.replies, d.machineOpens,
			d.machineClicks, d.firstOpen, d.lastOpen, id); err != nil {
			return nil, fmt.Errorf("sqlite: record events: counters of %s: %w", id, err)
		}
	}
	for k, l := range links {
		if _, err := tx.ExecContext(ctx, `UPDATE links SET clicks = clicks + ?, unique_clicks = unique_clicks + ?
			WHERE message_id = ? AND idx = ?`, l[0], l[1], k.message, k.link); err != nil {
			return nil, fmt.Errorf("sqlite: record events: link %d of %s: %w", k.link, k.message, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlite: record events: commit: %w", err)
	}
	return firsts, nil
}

func (db *DB) messageInfo(ctx context.Context, tx *sql.Tx, cache map[string]*messageInfo, id string) (*messageInfo, error) {
	if info, ok := cache[id]; ok {
		if info == nil {
			return nil, followed.ErrNotFound
		}
		return info, nil
	}
	info := &messageInfo{}
	var individual bool
	err := tx.QueryRowContext(ctx, "SELECT owner, subject, individual FROM messages WHERE id = ?", id).Scan(&info.owner, &info.subject, &individual)
	if errors.Is(err, sql.ErrNoRows) {
		cache[id] = nil
		return nil, followed.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("message %s: %w", id, err)
	}
	if individual {
		rows, err := tx.QueryContext(ctx, "SELECT email FROM recipients WHERE message_id = ? ORDER BY idx", id)
		if err != nil {
			return nil, fmt.Errorf("recipients of %s: %w", id, err)
		}
		for rows.Next() {
			var e string
			if err := rows.Scan(&e); err != nil {
				rows.Close()
				return nil, fmt.Errorf("recipients of %s: %w", id, err)
			}
			info.recipients = append(info.recipients, e)
		}
		if err := closeRows(rows); err != nil {
			return nil, fmt.Errorf("recipients of %s: %w", id, err)
		}
	}
	cache[id] = info
	return info, nil
}
