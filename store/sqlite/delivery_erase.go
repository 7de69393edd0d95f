package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/engage-email/engage/consent"
	"github.com/engage-email/engage/delivery"
)

// DeliveryEraser returns the eraser of the delivery tables (the local outbox names each mail's
// recipients; a send's failure reason may quote one), for consent.Options.Erasers.
func (db *DB) DeliveryEraser() consent.Eraser { return deliveryEraser{db} }

type deliveryEraser struct{ db *DB }

// deliveryTexts are the delivery tables' columns that may hold an address in free text.
func deliveryTexts() []textColumn {
	return []textColumn{{"outbox", "id", "recipients"}, {"outbox", "id", "subject"}, {"outbox", "id", "html"},
		{"outbox", "id", "headers"}, {"outbox", "id", "files"}, {"delivery_jobs", "message_id", "reason"}}
}

// outboxNaming lists the outbox entries whose recipients may name email (a substring match, which
// delivery.OutboxEntry.ForgetRecipient then makes exact).
func outboxNaming(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, email string) ([]delivery.OutboxEntry, error) {
	rows, err := q.QueryContext(ctx, "SELECT "+outboxColumns+" FROM outbox WHERE instr(lower(recipients), ?) > 0 ORDER BY created_at, id", email)
	if err != nil {
		return nil, fmt.Errorf("outbox mail to %s: %w", email, err)
	}
	var out []delivery.OutboxEntry
	for rows.Next() {
		e, err := scanOutbox(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("outbox mail to %s: %w", email, err)
		}
		out = append(out, e)
	}
	return out, closeRows(rows)
}

// ForgetRecipient implements consent.Eraser: in each outbox mail to the address its place gets a
// placeholder (and a mail to it alone loses its body, the person's own copy); the address is blanked
// out of every other outbox and send text holding it.
func (e deliveryEraser) ForgetRecipient(ctx context.Context, email string) ([]consent.Count, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if err := e.db.scrub(ctx, false); err != nil {
		return nil, err
	}
	tx, err := e.db.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: forget recipient in delivery: %w", err)
	}
	defer tx.Rollback()
	es, err := outboxNaming(ctx, tx, email)
	if err != nil {
		return nil, fmt.Errorf("sqlite: forget recipient in delivery: %w", err)
	}
	mails := 0
	for _, en := range es {
		if !en.ForgetRecipient(email) {
			continue
		}
		rcpts, err := json.Marshal(outboxRecipients{To: en.To, Cc: en.Cc, Bcc: en.Bcc})
		if err != nil {
			return nil, fmt.Errorf("sqlite: forget recipient in outbox mail %s: %w", en.ID, err)
		}
		if _, err := tx.ExecContext(ctx, "UPDATE outbox SET recipients = ?, html = ? WHERE id = ?", string(rcpts), en.HTML, en.ID); err != nil {
			return nil, fmt.Errorf("sqlite: forget recipient in outbox mail %s: %w", en.ID, err)
		}
		mails++
	}
	texts, err := blankOut(ctx, tx, email, deliveryTexts(), consent.ReplaceAddress)
	if err != nil {
		return nil, fmt.Errorf("sqlite: forget recipient in delivery: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlite: forget recipient in delivery: commit: %w", err)
	}
	return []consent.Count{{What: "outbox", N: mails}, {What: "delivery texts", N: texts}}, nil
}

// RecipientData implements consent.Eraser: the outbox mails sent (or drafted) to the address.
func (e deliveryEraser) RecipientData(ctx context.Context, email string) ([]consent.Record, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	es, err := outboxNaming(ctx, e.db.read, email)
	if err != nil {
		return nil, fmt.Errorf("sqlite: recipient data in delivery: %w", err)
	}
	return delivery.OutboxRecords(es, email), nil
}
