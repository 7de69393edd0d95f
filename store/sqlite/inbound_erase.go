package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/engage-email/engage/consent"
)

// InboundEraser returns the eraser of inbound mail's tables, for consent.Options.Erasers: bounce
// streaks name the address, and queued raw mail (simulated or fetched) carries it in its headers.
func (db *DB) InboundEraser() consent.Eraser { return inboundEraser{db} }

type inboundEraser struct{ db *DB }

// ForgetRecipient implements consent.Eraser. Queued mail that names the address is dropped whatever
// its state: processing it later would record an interaction of a person who asked to be forgotten.
func (e inboundEraser) ForgetRecipient(ctx context.Context, email string) ([]consent.Count, error) {
	tx, err := e.db.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: forget recipient in inbound: %w", err)
	}
	defer tx.Rollback()
	var counts []consent.Count
	for _, q := range []struct{ what, query string }{
		{"bounce streaks", "DELETE FROM inbound_bounce_streaks WHERE lower(email) = ?"},
		{"soft bounces", "DELETE FROM inbound_soft_bounces WHERE lower(email) = ?"},
		{"inbound mail", "DELETE FROM inbound_queue WHERE raw IS NOT NULL AND instr(lower(CAST(raw AS TEXT)), ?) > 0"},
	} {
		res, err := tx.ExecContext(ctx, q.query, email)
		if err != nil {
			return nil, fmt.Errorf("sqlite: forget recipient in %s: %w", q.what, err)
		}
		n, _ := res.RowsAffected()
		counts = append(counts, consent.Count{What: q.what, N: int(n)})
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlite: forget recipient in inbound: commit: %w", err)
	}
	return counts, nil
}

// RecipientData implements consent.Eraser: the address's bounce streak and the queued mail naming it.
func (e inboundEraser) RecipientData(ctx context.Context, email string) ([]consent.Record, error) {
	var out []consent.Record
	rows, err := e.db.read.QueryContext(ctx, "SELECT email, streak, last_at FROM inbound_bounce_streaks WHERE lower(email) = ?", email)
	if err != nil {
		return nil, fmt.Errorf("sqlite: recipient data in inbound: %w", err)
	}
	for rows.Next() {
		var addr string
		var streak, last int64
		if err := rows.Scan(&addr, &streak, &last); err != nil {
			rows.Close()
			return nil, fmt.Errorf("sqlite: recipient data in inbound: %w", err)
		}
		out = append(out, consent.Record{Source: "inbound", Kind: "bounce streak", ID: addr, At: time.UnixMilli(last).UTC(),
			Fields: map[string]string{"soft bounces in a row": fmt.Sprint(streak)}})
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("sqlite: recipient data in inbound: %w", err)
	}
	rows, err = e.db.read.QueryContext(ctx, `SELECT id, kind, mailbox, status, enqueued_at FROM inbound_queue
		WHERE raw IS NOT NULL AND instr(lower(CAST(raw AS TEXT)), ?) > 0 ORDER BY enqueued_at`, email)
	if err != nil {
		return nil, fmt.Errorf("sqlite: recipient data in inbound: %w", err)
	}
	for rows.Next() {
		var id, kind, mailbox, status string
		var at int64
		if err := rows.Scan(&id, &kind, &mailbox, &status, &at); err != nil {
			rows.Close()
			return nil, fmt.Errorf("sqlite: recipient data in inbound: %w", err)
		}
		out = append(out, consent.Record{Source: "inbound", Kind: "inbound mail", ID: id, At: time.UnixMilli(at).UTC(),
			Fields: map[string]string{"kind": kind, "mailbox": mailbox, "status": status}})
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("sqlite: recipient data in inbound: %w", err)
	}
	return out, nil
}
