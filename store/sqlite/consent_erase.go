package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"

	"github.com/engage-email/engage/consent"
	"github.com/engage-email/engage/followed"
)

// erasedText replaces a forgotten address wherever it appears in a message's text.
const erasedText = "[erased]"

// FollowedEraser returns the eraser of the followed messages' tables, for consent.Options.Erasers.
func (db *DB) FollowedEraser() consent.Eraser { return followedEraser{db} }

type followedEraser struct{ db *DB }

// placement is where an address sits in a message: its recipient index, and whether its events can be
// told from others' (an individual render, or a message to it alone).
type placement struct {
	message  string
	idx      int
	created  int64
	subject  string
	owner    string
	name     string
	kind     string
	attached bool
	shared   bool // the message had one render for all, whose events name no recipient
}

func placements(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, email string) ([]placement, error) {
	rows, err := q.QueryContext(ctx, `SELECT r.message_id, r.idx, m.created_at, m.subject, m.owner, r.name, r.kind,
		m.individual OR (SELECT count(*) FROM recipients o WHERE o.message_id = r.message_id) = 1, NOT m.individual
		FROM recipients r JOIN messages m ON m.id = r.message_id WHERE r.email = ? ORDER BY m.created_at, r.message_id`, email)
	if err != nil {
		return nil, fmt.Errorf("messages to %s: %w", email, err)
	}
	var out []placement
	for rows.Next() {
		var p placement
		if err := rows.Scan(&p.message, &p.idx, &p.created, &p.subject, &p.owner, &p.name, &p.kind, &p.attached, &p.shared); err != nil {
			rows.Close()
			return nil, fmt.Errorf("messages to %s: %w", email, err)
		}
		out = append(out, p)
	}
	return out, closeRows(rows)
}

// audienceOf selects the audience rows that are the address's in a placement: those of its
// individual render, or all of a message sent to it alone.
func audienceOf(p placement) (string, []any) {
	return "message_id = ? AND (recipient = ? OR recipient = -1)", []any{p.message, p.idx}
}

// eventsFilter selects the same placement's events, found by message through event_index.
func eventsFilter(p placement) (string, []any) {
	return "seq IN " + eventsOf("?", "") + " AND (recipient = ? OR recipient = -1)", []any{p.message, p.message, p.idx}
}

// ForgetRecipient implements consent.Eraser: the address's events, audience rows and individual
// render go; its recipient rows are anonymised (other recipients keep their indexes); the address is
// blanked out of every message text, render and link that contains it. Counters stay: they are sums.
func (e followedEraser) ForgetRecipient(ctx context.Context, email string) ([]consent.Count, error) {
	if err := e.db.scrub(ctx, false); err != nil {
		return nil, err
	}
	tx, err := e.db.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: forget recipient: %w", err)
	}
	defer tx.Rollback()
	ps, err := placements(ctx, tx, email)
	if err != nil {
		return nil, fmt.Errorf("sqlite: forget recipient: %w", err)
	}
	var events, audience, renders, recipients int64
	exec := func(n *int64, query string, args ...any) error {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		k, _ := res.RowsAffected()
		*n += k
		return nil
	}
	for _, p := range ps {
		if p.attached {
			where, args := eventsFilter(p)
			if err := exec(&events, "DELETE FROM events WHERE "+where, args...); err != nil {
				return nil, fmt.Errorf("sqlite: forget recipient: events of %s: %w", p.message, err)
			}
			where, args = audienceOf(p)
			if err := exec(&audience, "DELETE FROM audience WHERE "+where, args...); err != nil {
				return nil, fmt.Errorf("sqlite: forget recipient: audience of %s: %w", p.message, err)
			}
			// The mail is still in their mailbox: its later opens must not bring them back.
			rcpt := p.idx
			if p.shared {
				rcpt = followed.Shared
			}
			if _, err := tx.ExecContext(ctx, "INSERT OR IGNORE INTO untracked (message_id, recipient, since) VALUES (?, ?, ?)",
				p.message, rcpt, time.Now().UnixMilli()); err != nil {
				return nil, fmt.Errorf("sqlite: forget recipient: stop tracking %s: %w", p.message, err)
			}
		}
		if err := exec(&renders, "UPDATE renders SET html = '' WHERE message_id = ? AND recipient = ?", p.message, p.idx); err != nil {
			return nil, fmt.Errorf("sqlite: forget recipient: render of %s: %w", p.message, err)
		}
		if err := exec(&recipients, "UPDATE recipients SET email = ?, name = '' WHERE message_id = ? AND idx = ?",
			"erased-"+strconv.Itoa(p.idx)+"@erased.invalid", p.message, p.idx); err != nil {
			return nil, fmt.Errorf("sqlite: forget recipient: recipient of %s: %w", p.message, err)
		}
	}
	texts, err := blankOut(ctx, tx, email, followedTexts(), consent.ReplaceAddress)
	if err != nil {
		return nil, fmt.Errorf("sqlite: forget recipient: %w", err)
	}
	// A file name's extension is not more of the address's domain ("Quote for ann@x.com.pdf").
	names, err := blankOut(ctx, tx, email, []textColumn{{"attachments", "id", "name"}}, consent.ReplaceAddressInFileName)
	if err != nil {
		return nil, fmt.Errorf("sqlite: forget recipient: %w", err)
	}
	texts += names
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlite: forget recipient: commit: %w", err)
	}
	return []consent.Count{{What: "recipients", N: int(recipients)}, {What: "events", N: int(events)},
		{What: "audience", N: int(audience)}, {What: "renders", N: int(renders)}, {What: "texts", N: texts}}, nil
}

// textColumn names a text column and the key that addresses its rows ("rowid" for a WITHOUT ROWID
// table keyed by message_id and idx).
type textColumn struct{ table, key, col string }

// followedTexts are the followed tables' columns that may hold an address in free text.
func followedTexts() []textColumn {
	return []textColumn{{"messages", "id", "html"}, {"messages", "id", "subject"}, {"renders", "rowid", "html"},
		{"links", "rowid", "url"}, {"events", "seq", "url"}}
}

// blankOut replaces the address, in any case, in every message, render, link and event text holding
// it: a body may greet its recipient by address, and a link may carry it in its query. Only where it
// stands alone (consent.ReplaceAddress): inside a longer address it is someone else's.
func blankOut(ctx context.Context, tx *sql.Tx, email string, columns []textColumn,
	replace func(text, addr, with string) (string, int)) (int, error) {
	n := 0
	for _, c := range columns {
		key := c.key
		if key == "rowid" { // WITHOUT ROWID tables: address rows by their primary key
			key = "message_id || ':' || idx"
		}
		rows, err := tx.QueryContext(ctx, "SELECT "+key+", "+c.col+" FROM "+c.table+" WHERE instr(lower("+c.col+"), ?) > 0", email)
		if err != nil {
			return n, fmt.Errorf("find %s.%s: %w", c.table, c.col, err)
		}
		type hit struct{ key, text string }
		var hits []hit
		for rows.Next() {
			var h hit
			if err := rows.Scan(&h.key, &h.text); err != nil {
				rows.Close()
				return n, fmt.Errorf("find %s.%s: %w", c.table, c.col, err)
			}
			hits = append(hits, h)
		}
		if err := closeRows(rows); err != nil {
			return n, fmt.Errorf("find %s.%s: %w", c.table, c.col, err)
		}
		for _, h := range hits {
			text, k := replace(h.text, email, erasedText)
			if k == 0 {
				continue // only inside a longer address: someone else's
			}
			if _, err := tx.ExecContext(ctx, "UPDATE "+c.table+" SET "+c.col+" = ? WHERE "+key+" = ?", text, h.key); err != nil {
				return n, fmt.Errorf("blank %s.%s: %w", c.table, c.col, err)
			}
			n++
		}
	}
	return n, nil
}

// RecipientData implements consent.Eraser: the messages sent to the address and its events.
func (e followedEraser) RecipientData(ctx context.Context, email string) ([]consent.Record, error) {
	ps, err := placements(ctx, e.db.read, email)
	if err != nil {
		return nil, fmt.Errorf("sqlite: recipient data: %w", err)
	}
	var out []consent.Record
	for _, p := range ps {
		out = append(out, consent.Record{Source: "followed", Kind: "recipient", ID: p.message, At: time.UnixMilli(p.created).UTC(),
			Fields: map[string]string{"email": email, "name": p.name, "kind": p.kind, "subject": p.subject, "sender": p.owner}})
		if !p.attached {
			continue
		}
		where, args := eventsFilter(p)
		rows, err := e.db.read.QueryContext(ctx, `SELECT id, kind, at, url, ip, user_agent, device_type, device_os,
			device_client FROM events WHERE `+where+" ORDER BY at", args...)
		if err != nil {
			return nil, fmt.Errorf("sqlite: recipient data: events of %s: %w", p.message, err)
		}
		for rows.Next() {
			var id, kind, url, ip, ua, dt, dos, dc string
			var at int64
			if err := rows.Scan(&id, &kind, &at, &url, &ip, &ua, &dt, &dos, &dc); err != nil {
				rows.Close()
				return nil, fmt.Errorf("sqlite: recipient data: events of %s: %w", p.message, err)
			}
			out = append(out, consent.Record{Source: "followed", Kind: "event", ID: id, At: time.UnixMilli(at).UTC(),
				Fields: map[string]string{"message": p.message, "kind": kind, "url": url, "ip": ip, "userAgent": ua,
					"device": dt, "os": dos, "client": dc}})
		}
		if err := closeRows(rows); err != nil {
			return nil, fmt.Errorf("sqlite: recipient data: events of %s: %w", p.message, err)
		}
	}
	return out, nil
}

// AlertsEraser returns the eraser of the alerts table (alerts name the recipient who opened or
// clicked), for consent.Options.Erasers. It lives here until the alerts feature owns its erasure.
func (db *DB) AlertsEraser() consent.Eraser { return alertsEraser{db} }

type alertsEraser struct{ db *DB }

// ForgetRecipient implements consent.Eraser: alerts stay (they are the salesperson's), without the address.
func (e alertsEraser) ForgetRecipient(ctx context.Context, email string) ([]consent.Count, error) {
	if err := e.db.scrub(ctx, false); err != nil {
		return nil, err
	}
	tx, err := e.db.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: forget recipient in alerts: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, "UPDATE alerts SET recipient = '' WHERE lower(recipient) = ?", email)
	if err != nil {
		return nil, fmt.Errorf("sqlite: forget recipient in alerts: %w", err)
	}
	n, _ := res.RowsAffected()
	// Reminders carry their message's subject too, for the alert they fire.
	texts, err := blankOut(ctx, tx, email, []textColumn{{"alerts", "seq", "subject"}, {"alerts", "seq", "url"}, {"reminders", "id", "subject"}},
		consent.ReplaceAddress)
	if err != nil {
		return nil, fmt.Errorf("sqlite: forget recipient in alerts: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlite: forget recipient in alerts: commit: %w", err)
	}
	n += int64(texts)
	return []consent.Count{{What: "alerts", N: int(n)}}, nil
}

// RecipientData implements consent.Eraser: the alerts that name the address.
func (e alertsEraser) RecipientData(ctx context.Context, email string) ([]consent.Record, error) {
	rows, err := e.db.read.QueryContext(ctx, `SELECT id, kind, at, owner, message_id, subject FROM alerts
		WHERE lower(recipient) = ? ORDER BY seq`, email)
	if err != nil {
		return nil, fmt.Errorf("sqlite: recipient data in alerts: %w", err)
	}
	var out []consent.Record
	for rows.Next() {
		var id, kind, owner, msg, subject string
		var at int64
		if err := rows.Scan(&id, &kind, &at, &owner, &msg, &subject); err != nil {
			rows.Close()
			return nil, fmt.Errorf("sqlite: recipient data in alerts: %w", err)
		}
		out = append(out, consent.Record{Source: "alerts", Kind: "alert", ID: id, At: time.UnixMilli(at).UTC(),
			Fields: map[string]string{"kind": kind, "owner": owner, "message": msg, "subject": subject, "recipient": email}})
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("sqlite: recipient data in alerts: %w", err)
	}
	return out, nil
}
