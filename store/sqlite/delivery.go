package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/engage-email/engage/delivery"
	"github.com/engage-email/engage/followed"
)

var (
	_ delivery.Store       = (*DB)(nil)
	_ delivery.OutboxStore = (*DB)(nil)
)

const jobColumns = `message_id, owner, status, scheduled_at, due_at, attempts, reason, lease_owner, lease_until,
	created_at, sent_at`

func scanJob(row interface{ Scan(...any) error }) (delivery.Job, error) {
	var j delivery.Job
	var status string
	var scheduled, sent sql.NullInt64
	var due, until, created int64
	if err := row.Scan(&j.MessageID, &j.Owner, &status, &scheduled, &due, &j.Attempts, &j.Reason, &j.LeaseOwner,
		&until, &created, &sent); err != nil {
		return j, err
	}
	j.Status = delivery.Status(status)
	j.ScheduledAt, j.SentAt = fromMillis(scheduled), fromMillis(sent)
	j.DueAt, j.CreatedAt = time.UnixMilli(due).UTC(), time.UnixMilli(created).UTC()
	if until > 0 {
		j.LeaseUntil = time.UnixMilli(until).UTC()
	}
	return j, nil
}

func jobArgs(j delivery.Job) []any {
	return []any{j.MessageID, j.Owner, string(j.Status), millis(j.ScheduledAt), j.DueAt.UnixMilli(), j.Attempts, j.Reason,
		j.LeaseOwner, millisOrZero(j.LeaseUntil), j.CreatedAt.UnixMilli(), millis(j.SentAt)}
}

func millisOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// CreateJob implements delivery.Store.
func (db *DB) CreateJob(ctx context.Context, j delivery.Job) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: create job %s: %w", j.MessageID, err)
	}
	defer tx.Rollback()
	var status string
	err = tx.QueryRowContext(ctx, "SELECT status FROM delivery_jobs WHERE message_id = ?", j.MessageID).Scan(&status)
	switch {
	case err == nil && status != string(delivery.StatusFailed):
		return fmt.Errorf("sqlite: create job %s: %w", j.MessageID, delivery.ErrJobExists)
	case err != nil && !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("sqlite: create job %s: %w", j.MessageID, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO delivery_jobs (`+jobColumns+`) VALUES (?,?,?,?,?,?,?,?,?,?,?)`,
		jobArgs(j)...); err != nil {
		return fmt.Errorf("sqlite: create job %s: %w", j.MessageID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: create job %s: commit: %w", j.MessageID, err)
	}
	return nil
}

// Job implements delivery.Store.
func (db *DB) Job(ctx context.Context, messageID string) (delivery.Job, error) {
	j, err := scanJob(db.read.QueryRowContext(ctx, "SELECT "+jobColumns+" FROM delivery_jobs WHERE message_id = ?", messageID))
	if errors.Is(err, sql.ErrNoRows) {
		return j, fmt.Errorf("sqlite: job %s: %w", messageID, followed.ErrNotFound)
	}
	if err != nil {
		return j, fmt.Errorf("sqlite: job %s: %w", messageID, err)
	}
	return j, nil
}

// changeScheduled runs change on the message's job when it is SCHEDULED and not leased at now.
func (db *DB) changeScheduled(ctx context.Context, what, messageID string, now time.Time,
	change func(tx *sql.Tx, j *delivery.Job) error) (delivery.Job, error) {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return delivery.Job{}, fmt.Errorf("sqlite: %s job %s: %w", what, messageID, err)
	}
	defer tx.Rollback()
	j, err := scanJob(tx.QueryRowContext(ctx, "SELECT "+jobColumns+" FROM delivery_jobs WHERE message_id = ?", messageID))
	if errors.Is(err, sql.ErrNoRows) {
		return j, fmt.Errorf("sqlite: %s job %s: %w", what, messageID, followed.ErrNotFound)
	}
	if err != nil {
		return j, fmt.Errorf("sqlite: %s job %s: %w", what, messageID, err)
	}
	if j.Status != delivery.StatusScheduled || j.LeaseUntil.After(now) {
		return j, fmt.Errorf("sqlite: %s job %s (%s): %w", what, messageID, j.Status, delivery.ErrJobState)
	}
	if err := change(tx, &j); err != nil {
		return j, fmt.Errorf("sqlite: %s job %s: %w", what, messageID, err)
	}
	if err := tx.Commit(); err != nil {
		return j, fmt.Errorf("sqlite: %s job %s: commit: %w", what, messageID, err)
	}
	return j, nil
}

// CancelJob implements delivery.Store.
func (db *DB) CancelJob(ctx context.Context, messageID string, now time.Time) (delivery.Job, error) {
	return db.changeScheduled(ctx, "cancel", messageID, now, func(tx *sql.Tx, j *delivery.Job) error {
		var sent int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM render_sends WHERE message_id = ? AND sent_at IS NOT NULL",
			messageID).Scan(&sent); err != nil {
			return err
		}
		if sent > 0 {
			return fmt.Errorf("%d renders already sent: %w", sent, delivery.ErrJobState)
		}
		_, err := tx.ExecContext(ctx, "DELETE FROM delivery_jobs WHERE message_id = ?", messageID)
		return err
	})
}

// RescheduleJob implements delivery.Store.
func (db *DB) RescheduleJob(ctx context.Context, messageID string, at, now time.Time) (delivery.Job, error) {
	return db.changeScheduled(ctx, "reschedule", messageID, now, func(tx *sql.Tx, j *delivery.Job) error {
		j.ScheduledAt, j.DueAt, j.Reason = at, at, ""
		_, err := tx.ExecContext(ctx, "UPDATE delivery_jobs SET scheduled_at = ?, due_at = ?, reason = '' WHERE message_id = ?",
			at.UnixMilli(), at.UnixMilli(), messageID)
		return err
	})
}

// ClaimDueJobs implements delivery.Store: one statement on the single writer, so a job goes to one claimer.
func (db *DB) ClaimDueJobs(ctx context.Context, instance string, now time.Time, lease time.Duration, limit int) ([]delivery.Job, error) {
	rows, err := db.write.QueryContext(ctx, `UPDATE delivery_jobs SET status = 'SENDING', lease_owner = ?1, lease_until = ?2,
		attempts = attempts + 1
		WHERE message_id IN (
			SELECT message_id FROM delivery_jobs WHERE status = 'SCHEDULED' AND due_at <= ?3
			UNION ALL
			SELECT message_id FROM delivery_jobs WHERE status = 'SENDING' AND lease_until <= ?3
			LIMIT ?4)
		RETURNING `+jobColumns, instance, now.Add(lease).UnixMilli(), now.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: claim jobs: %w", err)
	}
	defer rows.Close()
	var out []delivery.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: claim jobs: %w", err)
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: claim jobs: %w", err)
	}
	return out, nil
}

// FinishJob implements delivery.Store.
func (db *DB) FinishJob(ctx context.Context, instance string, j delivery.Job) error {
	res, err := db.write.ExecContext(ctx, `UPDATE delivery_jobs SET status = ?, reason = ?, due_at = ?, sent_at = ?,
		lease_owner = '', lease_until = 0 WHERE message_id = ? AND status = 'SENDING' AND lease_owner = ?`,
		string(j.Status), j.Reason, j.DueAt.UnixMilli(), millis(j.SentAt), j.MessageID, instance)
	if err != nil {
		return fmt.Errorf("sqlite: finish job %s: %w", j.MessageID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("sqlite: finish job %s: %w", j.MessageID, errors.Join(delivery.ErrLeaseLost, err))
	}
	return nil
}

// RenderSends implements delivery.Store.
func (db *DB) RenderSends(ctx context.Context, messageID string) ([]delivery.RenderSend, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT message_id, render, draft_id, internet_message_id, conversation_id, sent_at
		FROM render_sends WHERE message_id = ? ORDER BY render`, messageID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: render sends of %s: %w", messageID, err)
	}
	defer rows.Close()
	out := []delivery.RenderSend{}
	for rows.Next() {
		var r delivery.RenderSend
		var sent sql.NullInt64
		if err := rows.Scan(&r.MessageID, &r.Render, &r.DraftID, &r.InternetMessageID, &r.ConversationID, &sent); err != nil {
			return nil, fmt.Errorf("sqlite: render sends of %s: %w", messageID, err)
		}
		r.SentAt = fromMillis(sent)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: render sends of %s: %w", messageID, err)
	}
	return out, nil
}

// leased runs write in a transaction if instance holds the message's job, else returns ErrLeaseLost.
func (db *DB) leased(ctx context.Context, what, instance, messageID string, write func(tx *sql.Tx) error) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: %s: %w", what, err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM delivery_jobs WHERE message_id = ? AND status = 'SENDING'
		AND lease_owner = ?`, messageID, instance).Scan(&n); err != nil {
		return fmt.Errorf("sqlite: %s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: %s: %w", what, delivery.ErrLeaseLost)
	}
	if err := write(tx); err != nil {
		return fmt.Errorf("sqlite: %s: %w", what, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: %s: commit: %w", what, err)
	}
	return nil
}

// RecordDraft implements delivery.Store.
func (db *DB) RecordDraft(ctx context.Context, instance string, r delivery.RenderSend) error {
	return db.leased(ctx, fmt.Sprintf("record draft %s/%d", r.MessageID, r.Render), instance, r.MessageID, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO render_sends (message_id, render, draft_id, internet_message_id,
			conversation_id, sent_at) VALUES (?,?,?,?,?,NULL) ON CONFLICT (message_id, render) DO UPDATE SET
			draft_id = excluded.draft_id, internet_message_id = excluded.internet_message_id,
			conversation_id = excluded.conversation_id WHERE render_sends.sent_at IS NULL`,
			r.MessageID, r.Render, r.DraftID, r.InternetMessageID, r.ConversationID)
		return err
	})
}

// MarkRenderSent implements delivery.Store.
func (db *DB) MarkRenderSent(ctx context.Context, instance, messageID string, render int, at time.Time) error {
	return db.leased(ctx, fmt.Sprintf("mark %s/%d sent", messageID, render), instance, messageID, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE render_sends SET sent_at = ? WHERE message_id = ? AND render = ? AND sent_at IS NULL`,
			at.UnixMilli(), messageID, render)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errors.Join(fmt.Errorf("render %d has no unsent draft: %w", render, delivery.ErrJobState), err)
		}
		return nil
	})
}

// outboxRecipients is how an outbox entry's recipients are kept in one column.
type outboxRecipients struct {
	To  []delivery.Address `json:"to"`
	Cc  []delivery.Address `json:"cc"`
	Bcc []delivery.Address `json:"bcc"`
}

// AddOutboxDraft implements delivery.OutboxStore.
func (db *DB) AddOutboxDraft(ctx context.Context, e delivery.OutboxEntry) error {
	rcpts, err := json.Marshal(outboxRecipients{To: e.To, Cc: e.Cc, Bcc: e.Bcc})
	if err != nil {
		return fmt.Errorf("sqlite: outbox draft %s: %w", e.ID, err)
	}
	headers, err := json.Marshal(e.Headers)
	if err != nil {
		return fmt.Errorf("sqlite: outbox draft %s: %w", e.ID, err)
	}
	files, err := json.Marshal(outboxFiles(e.Files))
	if err != nil {
		return fmt.Errorf("sqlite: outbox draft %s: %w", e.ID, err)
	}
	if _, err := db.write.ExecContext(ctx, `INSERT INTO outbox (id, sender, recipients, subject, html, headers,
		internet_message_id, conversation_id, created_at, sent_at, files) VALUES (?,?,?,?,?,?,?,?,?,NULL,?)`,
		e.ID, e.From, string(rcpts), e.Subject, e.HTML, string(headers), e.InternetMessageID, e.ConversationID,
		e.CreatedAt.UnixMilli(), string(files)); err != nil {
		return fmt.Errorf("sqlite: outbox draft %s: %w", e.ID, err)
	}
	return nil
}

// MarkOutboxSent implements delivery.OutboxStore.
func (db *DB) MarkOutboxSent(ctx context.Context, id string, at time.Time) error {
	res, err := db.write.ExecContext(ctx, "UPDATE outbox SET sent_at = ? WHERE id = ? AND sent_at IS NULL", at.UnixMilli(), id)
	if err != nil {
		return fmt.Errorf("sqlite: send outbox entry %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: send outbox entry %s: %w", id, err)
	} else if n == 1 {
		return nil
	}
	if _, err := db.OutboxEntry(ctx, id); err != nil {
		return err
	}
	return fmt.Errorf("sqlite: send outbox entry %s: already sent: %w", id, delivery.ErrJobState)
}

const outboxColumns = `id, sender, recipients, subject, html, headers, internet_message_id, conversation_id, created_at, sent_at, files`

func scanOutbox(row interface{ Scan(...any) error }) (delivery.OutboxEntry, error) {
	var e delivery.OutboxEntry
	var rcpts, headers, files string
	var created int64
	var sent sql.NullInt64
	if err := row.Scan(&e.ID, &e.From, &rcpts, &e.Subject, &e.HTML, &headers, &e.InternetMessageID, &e.ConversationID,
		&created, &sent, &files); err != nil {
		return e, err
	}
	if err := json.Unmarshal([]byte(files), &e.Files); err != nil {
		return e, fmt.Errorf("files: %w", err)
	}
	if len(e.Files) == 0 {
		e.Files = nil
	}
	var r outboxRecipients
	if err := json.Unmarshal([]byte(rcpts), &r); err != nil {
		return e, fmt.Errorf("recipients: %w", err)
	}
	if err := json.Unmarshal([]byte(headers), &e.Headers); err != nil {
		return e, fmt.Errorf("headers: %w", err)
	}
	e.To, e.Cc, e.Bcc = r.To, r.Cc, r.Bcc
	e.CreatedAt, e.SentAt = time.UnixMilli(created).UTC(), fromMillis(sent)
	return e, nil
}

// OutboxEntry implements delivery.OutboxStore.
func (db *DB) OutboxEntry(ctx context.Context, id string) (delivery.OutboxEntry, error) {
	e, err := scanOutbox(db.read.QueryRowContext(ctx, "SELECT "+outboxColumns+" FROM outbox WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return e, fmt.Errorf("sqlite: outbox entry %s: %w", id, followed.ErrNotFound)
	}
	if err != nil {
		return e, fmt.Errorf("sqlite: outbox entry %s: %w", id, err)
	}
	return e, nil
}

// OutboxEntries implements delivery.OutboxStore.
func (db *DB) OutboxEntries(ctx context.Context, q delivery.OutboxQuery) ([]delivery.OutboxEntry, error) {
	query := "SELECT " + outboxColumns + " FROM outbox WHERE sent_at IS NOT NULL"
	args := []any{}
	if q.From != "" {
		query += " AND sender = ?"
		args = append(args, q.From)
	}
	query += " ORDER BY sent_at DESC, id DESC LIMIT ?"
	args = append(args, q.Limit)
	rows, err := db.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: outbox entries: %w", err)
	}
	defer rows.Close()
	out := []delivery.OutboxEntry{}
	for rows.Next() {
		e, err := scanOutbox(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: outbox entries: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: outbox entries: %w", err)
	}
	return out, nil
}

// outboxFiles is never nil, so an entry without files is kept as [] rather than null.
func outboxFiles(fs []delivery.OutboxFile) []delivery.OutboxFile {
	if fs == nil {
		return []delivery.OutboxFile{}
	}
	return fs
}
