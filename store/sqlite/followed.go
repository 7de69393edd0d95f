package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/engage-email/engage/followed"
)

var _ followed.Store = (*DB)(nil)

// CreateMessage implements followed.Store.
func (db *DB) CreateMessage(ctx context.Context, m followed.Message) error {
	warnings, err := json.Marshal(nonNil(m.Warnings))
	if err != nil {
		return fmt.Errorf("sqlite: create message %s: %w", m.ID, err)
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: create message %s: %w", m.ID, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO messages (id, owner, subject, html, individual, following,
		not_followed_reason, template_id, warnings, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)`,
		m.ID, m.Owner, m.Subject, m.HTML, m.Individual, m.Following, m.NotFollowedReason, m.TemplateID,
		string(warnings), m.CreatedAt.UnixMilli()); err != nil {
		return fmt.Errorf("sqlite: create message %s: %w", m.ID, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO counters (message_id) VALUES (?)`, m.ID); err != nil {
		return fmt.Errorf("sqlite: create message %s: counters: %w", m.ID, err)
	}
	for i, r := range m.Recipients {
		if _, err := tx.ExecContext(ctx, `INSERT INTO recipients (message_id, idx, email, name, kind) VALUES (?,?,?,?,?)`,
			m.ID, i, r.Email, r.Name, string(r.Kind)); err != nil {
			return fmt.Errorf("sqlite: create message %s: recipient %d: %w", m.ID, i, err)
		}
	}
	for _, r := range m.Renders {
		targets, _ := json.Marshal(nonNil(r.Targets))
		if _, err := tx.ExecContext(ctx, `INSERT INTO renders (message_id, idx, recipient, targets, html, tracked) VALUES (?,?,?,?,?,?)`,
			m.ID, r.Index, r.Recipient, string(targets), r.HTML, r.Tracked); err != nil {
			return fmt.Errorf("sqlite: create message %s: render %d: %w", m.ID, r.Index, err)
		}
	}
	for _, l := range m.Links {
		if _, err := tx.ExecContext(ctx, `INSERT INTO links (message_id, idx, url) VALUES (?,?,?)`, m.ID, l.Index, l.URL); err != nil {
			return fmt.Errorf("sqlite: create message %s: link %d: %w", m.ID, l.Index, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: create message %s: commit: %w", m.ID, err)
	}
	return nil
}

// withCounters is the messages table joined with the counters kept apart from it (see migration 0016);
// no column name is in both, so queries name either table's columns bare.
const withCounters = "messages JOIN counters ON counters.message_id = messages.id"

const messageColumns = `id, owner, subject, individual, following, not_followed_reason, template_id, warnings,
	created_at, opens, unique_opens, first_opened_at, last_opened_at, clicks, unique_clicks, attachment_opens,
	replies, machine_opens, machine_clicks`

func scanMessage(row interface{ Scan(...any) error }, extra ...any) (followed.Message, error) {
	var m followed.Message
	var warnings string
	var created int64
	var first, last sql.NullInt64
	c := &m.Counters
	err := row.Scan(append([]any{&m.ID, &m.Owner, &m.Subject, &m.Individual, &m.Following, &m.NotFollowedReason,
		&m.TemplateID, &warnings, &created, &c.Opens, &c.UniqueOpens, &first, &last, &c.Clicks, &c.UniqueClicks,
		&c.AttachmentOpens, &c.Replies, &c.MachineOpens, &c.MachineClicks}, extra...)...)
	if err != nil {
		return m, err
	}
	m.CreatedAt = time.UnixMilli(created).UTC()
	c.FirstOpenedAt, c.LastOpenedAt = fromMillis(first), fromMillis(last)
	if err := json.Unmarshal([]byte(warnings), &m.Warnings); err != nil {
		return m, fmt.Errorf("warnings: %w", err)
	}
	return m, nil
}

// Message implements followed.Store.
func (db *DB) Message(ctx context.Context, id string) (followed.Message, error) {
	var html string
	m, err := scanMessage(db.read.QueryRowContext(ctx, "SELECT "+messageColumns+", html FROM "+withCounters+" WHERE id = ?", id), &html)
	if errors.Is(err, sql.ErrNoRows) {
		return followed.Message{}, fmt.Errorf("sqlite: message %s: %w", id, followed.ErrNotFound)
	}
	if err != nil {
		return followed.Message{}, fmt.Errorf("sqlite: message %s: %w", id, err)
	}
	m.HTML = html
	if err := db.fill(ctx, []*followed.Message{&m}, true); err != nil {
		return followed.Message{}, err
	}
	return m, nil
}

// fill loads recipients and links (and renders when asked) of ms.
func (db *DB) fill(ctx context.Context, ms []*followed.Message, renders bool) error {
	for _, m := range ms {
		rows, err := db.read.QueryContext(ctx, "SELECT email, name, kind FROM recipients WHERE message_id = ? ORDER BY idx", m.ID)
		if err != nil {
			return fmt.Errorf("sqlite: recipients of %s: %w", m.ID, err)
		}
		for rows.Next() {
			var r followed.Recipient
			if err := rows.Scan(&r.Email, &r.Name, &r.Kind); err != nil {
				rows.Close()
				return fmt.Errorf("sqlite: recipients of %s: %w", m.ID, err)
			}
			m.Recipients = append(m.Recipients, r)
		}
		if err := closeRows(rows); err != nil {
			return fmt.Errorf("sqlite: recipients of %s: %w", m.ID, err)
		}
		links, err := db.read.QueryContext(ctx, "SELECT idx, url, clicks, unique_clicks FROM links WHERE message_id = ? ORDER BY idx", m.ID)
		if err != nil {
			return fmt.Errorf("sqlite: links of %s: %w", m.ID, err)
		}
		for links.Next() {
			var l followed.Link
			if err := links.Scan(&l.Index, &l.URL, &l.Clicks, &l.UniqueClicks); err != nil {
				links.Close()
				return fmt.Errorf("sqlite: links of %s: %w", m.ID, err)
			}
			m.Links = append(m.Links, l)
		}
		if err := closeRows(links); err != nil {
			return fmt.Errorf("sqlite: links of %s: %w", m.ID, err)
		}
		if renders {
			if m.Renders, err = db.Renders(ctx, m.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// Renders implements followed.Store.
func (db *DB) Renders(ctx context.Context, messageID string) ([]followed.Render, error) {
	rows, err := db.read.QueryContext(ctx, "SELECT idx, recipient, targets, html, tracked FROM renders WHERE message_id = ? ORDER BY idx", messageID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: renders of %s: %w", messageID, err)
	}
	defer rows.Close()
	var out []followed.Render
	for rows.Next() {
		var r followed.Render
		var targets string
		if err := rows.Scan(&r.Index, &r.Recipient, &targets, &r.HTML, &r.Tracked); err != nil {
			return nil, fmt.Errorf("sqlite: renders of %s: %w", messageID, err)
		}
		if err := json.Unmarshal([]byte(targets), &r.Targets); err != nil {
			return nil, fmt.Errorf("sqlite: renders of %s: targets: %w", messageID, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: renders of %s: %w", messageID, err)
	}
	return out, nil
}

// Messages implements followed.Store. Listed messages carry recipients, links and counters, not renders.
func (db *DB) Messages(ctx context.Context, q followed.MessageQuery) ([]followed.Message, error) {
	var where []string
	var args []any
	if q.Owner != "" {
		where, args = append(where, "owner = ?"), append(args, q.Owner)
	}
	if !q.From.IsZero() {
		where, args = append(where, "created_at >= ?"), append(args, q.From.UnixMilli())
	}
	if !q.To.IsZero() {
		where, args = append(where, "created_at < ?"), append(args, q.To.UnixMilli())
	}
	if q.Following != nil {
		where, args = append(where, "following = ?"), append(args, *q.Following)
	}
	if q.Search != "" {
		like := "%" + escapeLike(strings.ToLower(q.Search)) + "%"
		where = append(where, `(lower(subject) LIKE ? ESCAPE '\' OR EXISTS (SELECT 1 FROM recipients r
			WHERE r.message_id = messages.id AND r.email LIKE ? ESCAPE '\'))`)
		args = append(args, like, like)
	}
	if q.After != nil {
		where = append(where, "(created_at < ? OR (created_at = ? AND id < ?))")
		at := q.After.At.UnixMilli()
		args = append(args, at, at, q.After.ID)
	}
	query := "SELECT " + messageColumns + " FROM " + withCounters
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY created_at DESC, id DESC LIMIT ?"
	args = append(args, q.Limit)
	rows, err := db.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list messages: %w", err)
	}
	var out []followed.Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("sqlite: list messages: %w", err)
		}
		out = append(out, m)
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("sqlite: list messages: %w", err)
	}
	ptrs := make([]*followed.Message, len(out))
	for i := range out {
		ptrs[i] = &out[i]
	}
	if err := db.fill(ctx, ptrs, false); err != nil {
		return nil, err
	}
	return out, nil
}

// Events implements followed.Store.
func (db *DB) Events(ctx context.Context, q followed.EventQuery) ([]followed.Event, error) {
	// The indexed events walk event_index backwards from the cursor and stop at the limit; the newest,
	// not indexed yet, come from the end of the events table.
	cursor := "1"
	args := []any{q.MessageID, q.Limit}
	if q.After != nil {
		cursor = "(at < ?3 OR (at = ?3 AND id < ?4))"
		args = append(args, q.After.At.UnixMilli(), q.After.ID)
	}
	const columns = `e.id, e.message_id, e.kind, e.at, e.recipient, e.link, e.url, e.ip, e.user_agent, e.method,
		e.device_type, e.device_os, e.device_client, e.machine, e.reason, e.rule`
	query := `SELECT * FROM (
		SELECT ` + columns + ` FROM (SELECT seq FROM event_index WHERE message_id = ?1 AND ` + indexed + ` AND ` + cursor + `
			ORDER BY at DESC, id DESC LIMIT ?2) x JOIN events e ON e.seq = x.seq
		UNION ALL
		SELECT ` + columns + ` FROM events e WHERE e.` + unindexed + `
			AND e.message_id = ?1 AND ` + cursor + `)
		ORDER BY at DESC, id DESC LIMIT ?2`
	rows, err := db.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: events of %s: %w", q.MessageID, err)
	}
	defer rows.Close()
	var out []followed.Event
	for rows.Next() {
		var e followed.Event
		var at int64
		if err := rows.Scan(&e.ID, &e.MessageID, &e.Kind, &at, &e.Recipient, &e.Link, &e.URL, &e.IP, &e.UserAgent,
			&e.Method, &e.Device.Type, &e.Device.OS, &e.Device.Client, &e.Machine, &e.Reason, &e.Rule); err != nil {
			return nil, fmt.Errorf("sqlite: events of %s: %w", q.MessageID, err)
		}
		e.At = time.UnixMilli(at).UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: events of %s: %w", q.MessageID, err)
	}
	return out, nil
}

// Summary implements followed.Store.
func (db *DB) Summary(ctx context.Context, q followed.SummaryQuery) (followed.Summary, error) {
	where := "following = 1"
	var args []any
	if q.Owner != "" {
		where, args = where+" AND owner = ?", append(args, q.Owner)
	}
	if !q.From.IsZero() {
		where, args = where+" AND created_at >= ?", append(args, q.From.UnixMilli())
	}
	if !q.To.IsZero() {
		where, args = where+" AND created_at < ?", append(args, q.To.UnixMilli())
	}
	var s followed.Summary
	err := db.read.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(unique_opens > 0), 0),
		coalesce(sum(unique_clicks > 0), 0), coalesce(sum(replies > 0), 0), coalesce(sum(opens), 0),
		coalesce(sum(clicks), 0), coalesce(sum(attachment_opens), 0), coalesce(sum(replies), 0)
		FROM `+withCounters+` WHERE `+where, args...).Scan(&s.FollowedEmails, &s.OpenedEmails, &s.ClickedEmails,
		&s.RepliedEmails, &s.Opens, &s.Clicks, &s.AttachmentOpens, &s.Replies)
	if err != nil {
		return s, fmt.Errorf("sqlite: summary: %w", err)
	}
	var opened int
	if err := db.read.QueryRowContext(ctx, "SELECT count(*) FROM "+withCounters+" WHERE first_opened_at IS NOT NULL AND "+where,
		args...).Scan(&opened); err != nil {
		return s, fmt.Errorf("sqlite: summary: %w", err)
	}
	if opened == 0 {
		return s, nil
	}
	// The median needs the one or two middle values only; the index on created_at narrows the scan.
	rows, err := db.read.QueryContext(ctx, `SELECT first_opened_at - created_at AS d FROM `+withCounters+`
		WHERE first_opened_at IS NOT NULL AND `+where+` ORDER BY d LIMIT ? OFFSET ?`,
		append(args, 2-opened%2, (opened-1)/2)...)
	if err != nil {
		return s, fmt.Errorf("sqlite: summary median: %w", err)
	}
	defer rows.Close()
	var sum, n int64
	for rows.Next() {
		var d int64
		if err := rows.Scan(&d); err != nil {
			return s, fmt.Errorf("sqlite: summary median: %w", err)
		}
		sum, n = sum+d, n+1
	}
	if err := rows.Err(); err != nil {
		return s, fmt.Errorf("sqlite: summary median: %w", err)
	}
	if n > 0 {
		s.MedianTimeToFirstOpen = time.Duration(sum/n) * time.Millisecond
	}
	return s, nil
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func closeRows(rows *sql.Rows) error {
	err := rows.Err()
	return errors.Join(err, rows.Close())
}
