package sqlite

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/engage-email/engage/followed"
)

// UpdateRenders implements followed.Store: renders are replaced whole, links are upserted by index so
// that a link the new renders still carry keeps its clicks, and links beyond the new list are dropped.
func (db *DB) UpdateRenders(ctx context.Context, m followed.Message) error {
	warnings, err := json.Marshal(nonNil(m.Warnings))
	if err != nil {
		return fmt.Errorf("sqlite: update renders of %s: %w", m.ID, err)
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: update renders of %s: %w", m.ID, err)
	}
	defer tx.Rollback()
	// The one writer holds the lock from here: a send claimed after this check waits for the commit.
	var started bool
	if err := tx.QueryRowContext(ctx, "SELECT "+sendStartedSQL, m.ID).Scan(&started); err != nil {
		return fmt.Errorf("sqlite: update renders of %s: %w", m.ID, err)
	}
	if started {
		return fmt.Errorf("sqlite: update renders of %s: %w", m.ID, followed.ErrSendStarted)
	}
	res, err := tx.ExecContext(ctx, "UPDATE messages SET following = ?, not_followed_reason = ?, warnings = ? WHERE id = ?",
		m.Following, m.NotFollowedReason, string(warnings), m.ID)
	if err != nil {
		return fmt.Errorf("sqlite: update renders of %s: %w", m.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("sqlite: update renders of %s: %w", m.ID, followed.ErrNotFound)
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM renders WHERE message_id = ?", m.ID); err != nil {
		return fmt.Errorf("sqlite: update renders of %s: %w", m.ID, err)
	}
	for _, r := range m.Renders {
		targets, _ := json.Marshal(nonNil(r.Targets))
		if _, err := tx.ExecContext(ctx, `INSERT INTO renders (message_id, idx, recipient, targets, html, tracked) VALUES (?,?,?,?,?,?)`,
			m.ID, r.Index, r.Recipient, string(targets), r.HTML, r.Tracked); err != nil {
			return fmt.Errorf("sqlite: update renders of %s: render %d: %w", m.ID, r.Index, err)
		}
	}
	for _, l := range m.Links {
		// A link whose URL changed at an index is a different link: its counters start again.
		if _, err := tx.ExecContext(ctx, `INSERT INTO links (message_id, idx, url) VALUES (?,?,?)
			ON CONFLICT (message_id, idx) DO UPDATE SET url = excluded.url,
				clicks = CASE WHEN links.url = excluded.url THEN links.clicks ELSE 0 END,
				unique_clicks = CASE WHEN links.url = excluded.url THEN links.unique_clicks ELSE 0 END`,
			m.ID, l.Index, l.URL); err != nil {
			return fmt.Errorf("sqlite: update renders of %s: link %d: %w", m.ID, l.Index, err)
		}
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM links WHERE message_id = ? AND idx >= ?", m.ID, len(m.Links)); err != nil {
		return fmt.Errorf("sqlite: update renders of %s: %w", m.ID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: update renders of %s: commit: %w", m.ID, err)
	}
	return nil
}
