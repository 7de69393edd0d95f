package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/engage-email/engage/recommend"
)

// CreateTemplate implements recommend.Templates.
func (db *DB) CreateTemplate(ctx context.Context, t recommend.Template) error {
	if _, err := db.write.ExecContext(ctx, `INSERT INTO templates (id, owner, name, subject, html, category,
		created_at, updated_at) VALUES (?,?,?,?,?,?,?,?)`, t.ID, t.Owner, t.Name, t.Subject, t.HTML, t.Category,
		t.CreatedAt.UnixMilli(), t.UpdatedAt.UnixMilli()); err != nil {
		return fmt.Errorf("sqlite: create template %s: %w", t.ID, err)
	}
	return nil
}

// Template implements recommend.Templates.
func (db *DB) Template(ctx context.Context, id string) (recommend.Template, error) {
	t, err := scanTemplate(db.read.QueryRowContext(ctx, `SELECT id, owner, name, subject, html, category, created_at,
		updated_at FROM templates WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return recommend.Template{}, fmt.Errorf("sqlite: template %s: %w", id, recommend.ErrNotFound)
	}
	if err != nil {
		return recommend.Template{}, fmt.Errorf("sqlite: template %s: %w", id, err)
	}
	return t, nil
}

// UpdateTemplate implements recommend.Templates.
func (db *DB) UpdateTemplate(ctx context.Context, t recommend.Template) error {
	res, err := db.write.ExecContext(ctx, `UPDATE templates SET name = ?, subject = ?, html = ?, category = ?,
		updated_at = ? WHERE id = ?`, t.Name, t.Subject, t.HTML, t.Category, t.UpdatedAt.UnixMilli(), t.ID)
	return oneRow(res, err, "update template "+t.ID)
}

// DeleteTemplate implements recommend.Templates.
func (db *DB) DeleteTemplate(ctx context.Context, id string) error {
	res, err := db.write.ExecContext(ctx, `DELETE FROM templates WHERE id = ?`, id)
	return oneRow(res, err, "delete template "+id)
}

// ListTemplates implements recommend.Templates.
func (db *DB) ListTemplates(ctx context.Context, category string) ([]recommend.Template, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT id, owner, name, subject, html, category, created_at, updated_at
		FROM templates WHERE ? = '' OR category = ? ORDER BY category, name, id`, category, category)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list templates: %w", err)
	}
	defer rows.Close()
	out := []recommend.Template{}
	for rows.Next() {
		t, err := scanTemplate(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list templates: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list templates: %w", err)
	}
	return out, nil
}

// TemplateStats implements recommend.TemplateStore: followed messages that went out only (see sentAt);
// human opens from the unique-open counter (machine opens are kept apart), real replies only, and recorded
// outcomes.
func (db *DB) TemplateStats(ctx context.Context, category string) ([]recommend.TemplateStats, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT t.id, count(m.id), coalesce(sum(c.unique_opens > 0), 0),
		coalesce(sum(c.replies > 0), 0), coalesce(sum(o.outcome = 'WON'), 0), coalesce(sum(o.outcome = 'LOST'), 0)
		FROM templates t
		LEFT JOIN (messages m `+sentJoin+`) ON m.template_id = t.id AND m.template_id <> '' AND m.following = 1
			AND `+sentAt+` IS NOT NULL
		LEFT JOIN counters c ON c.message_id = m.id
		LEFT JOIN outcomes o ON o.message_id = m.id
		WHERE t.category = ? GROUP BY t.id ORDER BY t.id`, category)
	if err != nil {
		return nil, fmt.Errorf("sqlite: template stats of %q: %w", category, err)
	}
	defer rows.Close()
	out := []recommend.TemplateStats{}
	for rows.Next() {
		var s recommend.TemplateStats
		if err := rows.Scan(&s.ID, &s.Emails, &s.HumanOpened, &s.Replied, &s.Won, &s.Lost); err != nil {
			return nil, fmt.Errorf("sqlite: template stats of %q: %w", category, err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: template stats of %q: %w", category, err)
	}
	return out, nil
}

// RecordOutcome implements recommend.Outcomes in one statement, so a message that is not owner's is
// never touched.
func (db *DB) RecordOutcome(ctx context.Context, owner, messageID string, o recommend.Outcome, at time.Time) error {
	res, err := db.write.ExecContext(ctx, `INSERT INTO outcomes (message_id, outcome, recorded_at)
		SELECT id, ?, ? FROM messages WHERE id = ? AND owner = ?
		ON CONFLICT (message_id) DO UPDATE SET outcome = excluded.outcome, recorded_at = excluded.recorded_at`,
		string(o), at.UnixMilli(), messageID, owner)
	return oneRow(res, err, "record outcome of "+messageID)
}

func oneRow(res sql.Result, err error, what string) error {
	if err != nil {
		return fmt.Errorf("sqlite: %s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlite: %s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: %s: %w", what, recommend.ErrNotFound)
	}
	return nil
}

type rowScanner interface{ Scan(dest ...any) error }

func scanTemplate(r rowScanner) (recommend.Template, error) {
	var t recommend.Template
	var created, updated int64
	if err := r.Scan(&t.ID, &t.Owner, &t.Name, &t.Subject, &t.HTML, &t.Category, &created, &updated); err != nil {
		return recommend.Template{}, err
	}
	t.CreatedAt, t.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return t, nil
}
