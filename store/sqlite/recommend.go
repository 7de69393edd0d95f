package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/engage-email/engage/recommend"
)

var (
	_ recommend.Store          = (*DB)(nil)
	_ recommend.TemplateStore  = (*DB)(nil)
	_ recommend.Templates      = (*DB)(nil)
	_ recommend.Outcomes       = (*DB)(nil)
	_ recommend.ProfileSaver   = (*DB)(nil)
	_ recommend.ColleagueStore = (*DB)(nil)
)

// firstEngagement is the first human engagement (open, click, attachment, real reply) of the
// recipient row r with message m: machine events never count. A shared render's events name no
// recipient, so they count only when the message had a single recipient.
var firstEngagement = `CASE WHEN ` + allIndexed + `
	THEN (SELECT min(e.at) FROM ` + indexedEvents("m.id", humanEngagement) + `)
	ELSE (SELECT min(at) FROM (` + messageEvents("e.at", "m.id", humanEngagement) + `)) END`

// sentJoin brings the delivery job of message m, if any, for sentAt.
const sentJoin = `LEFT JOIN delivery_jobs j ON j.message_id = m.id`

// sentAt is when message m went out, NULL while it has not, so that drafts, scheduled sends and failed
// ones teach recommendations nothing: its delivery job's send time (its first sent render's when the job
// stopped partway), else, with no job at all, its creation, as the Outlook add-in sends its own drafts.
const sentAt = `CASE WHEN j.message_id IS NULL THEN m.created_at
	ELSE coalesce(j.sent_at, (SELECT min(s.sent_at) FROM render_sends s WHERE s.message_id = m.id)) END`

const humanEngagement = `e.machine = 0 AND e.kind IN ('OPENED', 'LINK_CLICKED', 'ATTACHMENT_OPENED', 'REPLIED')
	AND (e.recipient = r.idx OR (e.recipient = -1 AND NOT EXISTS (
		SELECT 1 FROM recipients r2 WHERE r2.message_id = m.id AND r2.idx <> r.idx)))`

// RecipientEngagement implements recommend.Store. A recipient's habits do not depend on who writes,
// so the histograms cover every followed message the organisation sent them, whoever the owner.
func (db *DB) RecipientEngagement(ctx context.Context, _ string, recipients []string) ([]recommend.Engagement, error) {
	if len(recipients) == 0 {
		return nil, nil
	}
	args := make([]any, len(recipients))
	for i, r := range recipients {
		args[i] = strings.ToLower(r)
	}
	rows, err := db.read.QueryContext(ctx, `SELECT r.email, `+sentAt+`, `+firstEngagement+`
		FROM recipients r JOIN messages m ON m.id = r.message_id `+sentJoin+`
		WHERE r.email IN (`+strings.TrimSuffix(strings.Repeat("?,", len(args)), ",")+`) AND m.following = 1
		AND `+sentAt+` IS NOT NULL`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: recipient engagement: %w", err)
	}
	byAddr := map[string]*recommend.Engagement{}
	var order []string
	err = scanEngagement(rows, func(email, _ string, sent, read time.Time) {
		e := byAddr[email]
		if e == nil {
			e = &recommend.Engagement{Recipient: email}
			byAddr[email] = e
			order = append(order, email)
		}
		e.AddDelivery(sent, read)
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: recipient engagement: %w", err)
	}
	out := make([]recommend.Engagement, 0, len(order))
	for _, a := range order {
		out = append(out, *byAddr[a])
	}
	return out, nil
}

// DomainEngagement implements recommend.Store: members with a zone on record, in that zone's local time.
func (db *DB) DomainEngagement(ctx context.Context, domains []string) (map[string]recommend.Engagement, error) {
	out := make(map[string]recommend.Engagement, len(domains))
	for _, d := range domains {
		d = strings.ToLower(d)
		e, n, err := db.localEngagement(ctx, "WHERE p.domain = ?", d)
		if err != nil {
			return nil, fmt.Errorf("sqlite: engagement of domain %s: %w", d, err)
		}
		if n > 0 {
			e.Recipient = d
			out[d] = e
		}
	}
	return out, nil
}

// OrgEngagement implements recommend.Store: every recipient with a zone on record, in local time.
func (db *DB) OrgEngagement(ctx context.Context) (recommend.Engagement, error) {
	e, _, err := db.localEngagement(ctx, "")
	if err != nil {
		return recommend.Engagement{}, fmt.Errorf("sqlite: organisation engagement: %w", err)
	}
	return e, nil
}

func (db *DB) localEngagement(ctx context.Context, where string, args ...any) (recommend.Engagement, int, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT r.email, p.zone, `+sentAt+`, `+firstEngagement+`
		FROM recipient_profiles p JOIN recipients r ON r.email = p.email JOIN messages m ON m.id = r.message_id
		`+sentJoin+` `+where+` `+and(where)+` m.following = 1 AND `+sentAt+` IS NOT NULL`, args...)
	if err != nil {
		return recommend.Engagement{}, 0, err
	}
	var e recommend.Engagement
	zones := map[string]*time.Location{}
	n := 0
	err = scanEngagement(rows, func(_, zone string, sent, read time.Time) {
		loc, ok := zones[zone]
		if !ok {
			loc, _ = time.LoadLocation(zone) // checked when saved; an unloadable one is left out
			zones[zone] = loc
		}
		if loc == nil {
			return
		}
		n++
		e.AddSend(sent, loc)
		if !read.IsZero() {
			e.AddEngagement(sent, read, loc)
		}
	})
	return e, n, err
}

func and(where string) string {
	if where == "" {
		return "WHERE"
	}
	return "AND"
}

// scanEngagement reads (email, [zone,] send time, first engagement) rows and closes them.
func scanEngagement(rows *sql.Rows, add func(email, zone string, sent, read time.Time)) error {
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	for rows.Next() {
		var email, zone string
		var sent int64
		var read sql.NullInt64
		dest := []any{&email, &sent, &read}
		if len(cols) == 4 {
			dest = []any{&email, &zone, &sent, &read}
		}
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		add(email, zone, time.UnixMilli(sent).UTC(), fromMillis(read))
	}
	return rows.Err()
}

// Profiles implements recommend.Store.
func (db *DB) Profiles(ctx context.Context, recipients []string) (map[string]recommend.Profile, error) {
	out := make(map[string]recommend.Profile, len(recipients))
	if len(recipients) == 0 {
		return out, nil
	}
	args := make([]any, len(recipients))
	for i, r := range recipients {
		args[i] = strings.ToLower(r)
	}
	rows, err := db.read.QueryContext(ctx, `SELECT email, zone, source FROM recipient_profiles
		WHERE email IN (`+strings.TrimSuffix(strings.Repeat("?,", len(args)), ",")+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: recipient profiles: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var email, zone, source string
		if err := rows.Scan(&email, &zone, &source); err != nil {
			return nil, fmt.Errorf("sqlite: recipient profiles: %w", err)
		}
		if loc, err := time.LoadLocation(zone); err == nil {
			out[email] = recommend.Profile{Recipient: email, Location: loc, Source: source}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: recipient profiles: %w", err)
	}
	return out, nil
}

// DomainZones implements recommend.Store: the zone most profiled members are in (ties: by name).
func (db *DB) DomainZones(ctx context.Context, domains []string) (map[string]*time.Location, error) {
	out := make(map[string]*time.Location, len(domains))
	for _, d := range domains {
		d = strings.ToLower(d)
		var zone string
		err := db.read.QueryRowContext(ctx, `SELECT zone FROM recipient_profiles WHERE domain = ?
			GROUP BY zone ORDER BY count(*) DESC, zone LIMIT 1`, d).Scan(&zone)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("sqlite: zone of domain %s: %w", d, err)
		}
		if loc, err := time.LoadLocation(zone); err == nil {
			out[d] = loc
		}
	}
	return out, nil
}

// SaveProfile implements recommend.ProfileSaver.
func (db *DB) SaveProfile(ctx context.Context, p recommend.Profile, at time.Time) error {
	p, err := recommend.CheckProfile(p)
	if err != nil {
		return fmt.Errorf("sqlite: save profile: %w", err)
	}
	domain := p.Recipient[strings.LastIndexByte(p.Recipient, '@')+1:]
	if _, err := db.write.ExecContext(ctx, `INSERT INTO recipient_profiles (email, domain, zone, source, updated_at)
		VALUES (?,?,?,?,?) ON CONFLICT (email) DO UPDATE SET zone = excluded.zone, source = excluded.source,
		updated_at = excluded.updated_at`, p.Recipient, domain, p.Location.String(), p.Source, at.UnixMilli()); err != nil {
		return fmt.Errorf("sqlite: save profile of %s: %w", p.Recipient, err)
	}
	return nil
}

// Colleagues implements recommend.ColleagueStore: recent followed messages through messages_created,
// their recipients by primary key, and each recipient's profile by email. CROSS JOIN keeps that order:
// left to itself the planner walks recipients_email from the cursor through all mail ever sent.
func (db *DB) Colleagues(ctx context.Context, q recommend.ColleagueQuery) ([]string, error) {
	if q.Limit <= 0 {
		return nil, nil
	}
	since := q.Since.UnixMilli()
	args := []any{since, q.After, q.StaleBefore.UnixMilli()}
	domains := `SELECT DISTINCT lower(substr(owner, instr(owner, '@') + 1)) FROM messages WHERE created_at >= ?`
	if len(q.Domains) > 0 {
		domains = strings.TrimSuffix(strings.Repeat("?,", len(q.Domains)), ",")
		for _, d := range q.Domains {
			args = append(args, strings.ToLower(d))
		}
	} else {
		args = append(args, since)
	}
	args = append(args, q.Limit)
	rows, err := db.read.QueryContext(ctx, `SELECT DISTINCT r.email FROM messages m
		CROSS JOIN recipients r ON r.message_id = m.id
		LEFT JOIN recipient_profiles p ON p.email = r.email
		WHERE m.created_at >= ? AND m.following = 1 AND r.email > ?
		AND (p.email IS NULL OR (p.source = 'mailbox' AND p.updated_at < ?))
		AND substr(r.email, instr(r.email, '@') + 1) IN (`+domains+`)
		ORDER BY r.email LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: colleagues without a fresh mailbox zone: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var email string
		if err := rows.Scan(&email); err != nil {
			return nil, fmt.Errorf("sqlite: colleagues without a fresh mailbox zone: %w", err)
		}
		out = append(out, email)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: colleagues without a fresh mailbox zone: %w", err)
	}
	return out, nil
}
