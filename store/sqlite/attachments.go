package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/engage-email/engage/attachments"
	"github.com/engage-email/engage/followed"
)

var _ attachments.Store = (*DB)(nil)

// sendStartedSQL is true when a message's send has begun: a job being sent or sent, or any render
// that reached the mailbox (a failed job may have sent some).
const sendStartedSQL = `(EXISTS (SELECT 1 FROM delivery_jobs WHERE message_id = ?1 AND status IN ('SENDING', 'SENT'))
	OR EXISTS (SELECT 1 FROM render_sends WHERE message_id = ?1))`

const attachmentColumns = `id, message_id, idx, name, size, content_type, requested, shared, note, drive_item, share_url,
	blob, created_at`

func scanAttachment(row interface{ Scan(...any) error }) (attachments.Attachment, error) {
	var a attachments.Attachment
	var created int64
	err := row.Scan(&a.ID, &a.MessageID, &a.Index, &a.Name, &a.Size, &a.ContentType, &a.Requested, &a.Shared, &a.Note,
		&a.DriveItem, &a.ShareURL, &a.Blob, &created)
	a.CreatedAt = time.UnixMilli(created).UTC()
	return a, err
}

// AddAttachment implements attachments.Store: the send check, the index and the insert are one
// transaction on the single writer, so a send that starts meanwhile is seen.
func (db *DB) AddAttachment(ctx context.Context, a attachments.Attachment) (attachments.Attachment, error) {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return a, fmt.Errorf("sqlite: add attachment %s: %w", a.ID, err)
	}
	defer tx.Rollback()
	var exists, started bool
	if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM messages WHERE id = ?1), "+sendStartedSQL,
		a.MessageID).Scan(&exists, &started); err != nil {
		return a, fmt.Errorf("sqlite: add attachment %s: %w", a.ID, err)
	}
	if !exists {
		return a, fmt.Errorf("sqlite: add attachment to %s: %w", a.MessageID, followed.ErrNotFound)
	}
	if started {
		return a, fmt.Errorf("sqlite: add attachment to %s: %w", a.MessageID, attachments.ErrSent)
	}
	if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(idx) + 1, 0) FROM attachments WHERE message_id = ?",
		a.MessageID).Scan(&a.Index); err != nil {
		return a, fmt.Errorf("sqlite: add attachment %s: %w", a.ID, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO attachments (`+attachmentColumns+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		a.ID, a.MessageID, a.Index, a.Name, a.Size, a.ContentType, a.Requested, a.Shared, a.Note, a.DriveItem, a.ShareURL,
		a.Blob, a.CreatedAt.UnixMilli()); err != nil {
		return a, fmt.Errorf("sqlite: add attachment %s: %w", a.ID, err)
	}
	if err := tx.Commit(); err != nil {
		return a, fmt.Errorf("sqlite: add attachment %s: commit: %w", a.ID, err)
	}
	return a, nil
}

// RestoreAttachment implements attachments.Store; an attachment already there is left as it is.
func (db *DB) RestoreAttachment(ctx context.Context, a attachments.Attachment) error {
	if _, err := db.write.ExecContext(ctx, `INSERT INTO attachments (`+attachmentColumns+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT (id) DO NOTHING`, a.ID, a.MessageID, a.Index, a.Name, a.Size, a.ContentType, a.Requested, a.Shared, a.Note,
		a.DriveItem, a.ShareURL, a.Blob, a.CreatedAt.UnixMilli()); err != nil {
		return fmt.Errorf("sqlite: restore attachment %s: %w", a.ID, err)
	}
	return nil
}

// Attachment implements attachments.Store.
func (db *DB) Attachment(ctx context.Context, id string) (attachments.Attachment, error) {
	a, err := scanAttachment(db.read.QueryRowContext(ctx, "SELECT "+attachmentColumns+" FROM attachments WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("sqlite: attachment %s: %w", id, followed.ErrNotFound)
	}
	if err != nil {
		return a, fmt.Errorf("sqlite: attachment %s: %w", id, err)
	}
	return a, nil
}

// Attachments implements attachments.Store.
func (db *DB) Attachments(ctx context.Context, messageID string) ([]attachments.Attachment, error) {
	rows, err := db.read.QueryContext(ctx, "SELECT "+attachmentColumns+" FROM attachments WHERE message_id = ? ORDER BY idx", messageID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: attachments of %s: %w", messageID, err)
	}
	defer rows.Close()
	out := []attachments.Attachment{}
	for rows.Next() {
		a, err := scanAttachment(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: attachments of %s: %w", messageID, err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: attachments of %s: %w", messageID, err)
	}
	return out, nil
}

// RemoveAttachment implements attachments.Store.
func (db *DB) RemoveAttachment(ctx context.Context, id string) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: remove attachment %s: %w", id, err)
	}
	defer tx.Rollback()
	var messageID string
	err = tx.QueryRowContext(ctx, "SELECT message_id FROM attachments WHERE id = ?", id).Scan(&messageID)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlite: remove attachment %s: %w", id, followed.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("sqlite: remove attachment %s: %w", id, err)
	}
	var started bool
	if err := tx.QueryRowContext(ctx, "SELECT "+sendStartedSQL, messageID).Scan(&started); err != nil {
		return fmt.Errorf("sqlite: remove attachment %s: %w", id, err)
	}
	if started {
		return fmt.Errorf("sqlite: remove attachment %s: %w", id, attachments.ErrSent)
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM attachments WHERE id = ?", id); err != nil {
		return fmt.Errorf("sqlite: remove attachment %s: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: remove attachment %s: commit: %w", id, err)
	}
	return nil
}

// SendStarted implements attachments.Store.
func (db *DB) SendStarted(ctx context.Context, messageID string) (bool, error) {
	var started bool
	if err := db.read.QueryRowContext(ctx, "SELECT "+sendStartedSQL, messageID).Scan(&started); err != nil {
		return false, fmt.Errorf("sqlite: send state of %s: %w", messageID, err)
	}
	return started, nil
}
