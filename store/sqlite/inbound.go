package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/inbound"
)

var _ inbound.Store = (*DB)(nil)

// EnqueueInbound implements inbound.Store.
func (db *DB) EnqueueInbound(ctx context.Context, items []inbound.Item) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: enqueue inbound: %w", err)
	}
	defer tx.Rollback()
	for _, it := range items {
		at := it.EnqueuedAt.UnixMilli()
		if _, err := tx.ExecContext(ctx, `INSERT INTO inbound_queue (id, kind, mailbox, graph_id, raw, subscription_id, event,
			status, enqueued_at, due_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'PENDING', ?, ?) ON CONFLICT (id) DO NOTHING`,
			it.ID, string(it.Kind), it.Mailbox, it.GraphID, it.Raw, it.SubscriptionID, it.Event, at, at); err != nil {
			return fmt.Errorf("sqlite: enqueue inbound %s: %w", it.ID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: enqueue inbound: commit: %w", err)
	}
	return nil
}

// ClaimInbound implements inbound.Store.
func (db *DB) ClaimInbound(ctx context.Context, instance string, now time.Time, lease time.Duration, limit int) ([]inbound.Item, error) {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: claim inbound: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `UPDATE inbound_queue SET lease_owner = ?, lease_until = ?, attempts = attempts + 1
		WHERE id IN (SELECT id FROM inbound_queue WHERE status = 'PENDING' AND due_at <= ? AND lease_until <= ?
			ORDER BY due_at, enqueued_at, id LIMIT ?)
		RETURNING id, kind, mailbox, graph_id, raw, subscription_id, event, enqueued_at, attempts, last_error`,
		instance, now.Add(lease).UnixMilli(), now.UnixMilli(), now.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: claim inbound: %w", err)
	}
	var items []inbound.Item
	for rows.Next() {
		var it inbound.Item
		var kind string
		var enq int64
		if err := rows.Scan(&it.ID, &kind, &it.Mailbox, &it.GraphID, &it.Raw, &it.SubscriptionID, &it.Event, &enq,
			&it.Attempts, &it.LastError); err != nil {
			rows.Close()
			return nil, fmt.Errorf("sqlite: claim inbound: %w", err)
		}
		it.Kind, it.EnqueuedAt = inbound.ItemKind(kind), time.UnixMilli(enq).UTC()
		items = append(items, it)
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("sqlite: claim inbound: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlite: claim inbound: commit: %w", err)
	}
	// RETURNING gives no order; the processor handles items oldest first.
	sortItems(items)
	return items, nil
}

func sortItems(items []inbound.Item) {
	slices.SortFunc(items, func(a, b inbound.Item) int {
		if c := a.EnqueuedAt.Compare(b.EnqueuedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// FinishInbound implements inbound.Store: the item is kept as DONE (without its raw body) so that the
// same notification queued again is ignored until PurgeInbound.
func (db *DB) FinishInbound(ctx context.Context, instance, id string) error {
	return db.settleInbound(ctx, instance, id, `UPDATE inbound_queue SET status = 'DONE', raw = NULL, lease_owner = '',
		lease_until = 0, done_at = ? WHERE id = ? AND lease_owner = ? AND status = 'PENDING'`, time.Now().UnixMilli(), id, instance)
}

// RetryInbound implements inbound.Store.
func (db *DB) RetryInbound(ctx context.Context, instance, id string, at time.Time, reason string, dead bool) error {
	status := "PENDING"
	if dead {
		status = "DEAD"
	}
	return db.settleInbound(ctx, instance, id, `UPDATE inbound_queue SET status = ?, due_at = ?, last_error = ?, lease_owner = '',
		lease_until = 0 WHERE id = ? AND lease_owner = ? AND status = 'PENDING'`, status, at.UnixMilli(), reason, id, instance)
}

func (db *DB) settleInbound(ctx context.Context, instance, id, query string, args ...any) error {
	res, err := db.write.ExecContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("sqlite: settle inbound %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("sqlite: settle inbound %s for %s: %w", id, instance, inbound.ErrLeaseLost)
	}
	return nil
}

// InboundPending implements inbound.Store.
func (db *DB) InboundPending(ctx context.Context) (int, error) {
	var n int
	if err := db.read.QueryRowContext(ctx, "SELECT count(*) FROM inbound_queue WHERE status = 'PENDING'").Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: inbound pending: %w", err)
	}
	return n, nil
}

// PurgeInbound implements inbound.Store.
func (db *DB) PurgeInbound(ctx context.Context, before time.Time) (int, error) {
	res, err := db.write.ExecContext(ctx, "DELETE FROM inbound_queue WHERE status = 'DONE' AND done_at < ?", before.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("sqlite: purge inbound: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlite: purge inbound: %w", err)
	}
	return int(n), nil
}

// SaveInboxSubscription implements inbound.Store.
func (db *DB) SaveInboxSubscription(ctx context.Context, s inbound.Subscription) error {
	if _, err := db.write.ExecContext(ctx, `INSERT INTO inbound_subscriptions (id, mailbox, client_state, expires_at, created_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET mailbox = excluded.mailbox, client_state = excluded.client_state,
		expires_at = excluded.expires_at`, s.ID, strings.ToLower(s.Mailbox), s.ClientState, s.ExpiresAt.UnixMilli(),
		s.CreatedAt.UnixMilli()); err != nil {
		return fmt.Errorf("sqlite: save subscription %s: %w", s.ID, err)
	}
	return nil
}

const subscriptionColumns = "id, mailbox, client_state, expires_at, created_at"

func scanSubscription(row interface{ Scan(...any) error }) (inbound.Subscription, error) {
	var s inbound.Subscription
	var exp, created int64
	if err := row.Scan(&s.ID, &s.Mailbox, &s.ClientState, &exp, &created); err != nil {
		return s, err
	}
	s.ExpiresAt, s.CreatedAt = time.UnixMilli(exp).UTC(), time.UnixMilli(created).UTC()
	return s, nil
}

// InboxSubscription implements inbound.Store.
func (db *DB) InboxSubscription(ctx context.Context, id string) (inbound.Subscription, error) {
	s, err := scanSubscription(db.read.QueryRowContext(ctx, "SELECT "+subscriptionColumns+" FROM inbound_subscriptions WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return s, fmt.Errorf("sqlite: subscription %s: %w", id, followed.ErrNotFound)
	}
	if err != nil {
		return s, fmt.Errorf("sqlite: subscription %s: %w", id, err)
	}
	return s, nil
}

// InboxSubscriptions implements inbound.Store.
func (db *DB) InboxSubscriptions(ctx context.Context) ([]inbound.Subscription, error) {
	rows, err := db.read.QueryContext(ctx, "SELECT "+subscriptionColumns+" FROM inbound_subscriptions ORDER BY mailbox, id")
	if err != nil {
		return nil, fmt.Errorf("sqlite: subscriptions: %w", err)
	}
	var out []inbound.Subscription
	for rows.Next() {
		s, err := scanSubscription(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("sqlite: subscriptions: %w", err)
		}
		out = append(out, s)
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("sqlite: subscriptions: %w", err)
	}
	return out, nil
}

// DeleteInboxSubscription implements inbound.Store.
func (db *DB) DeleteInboxSubscription(ctx context.Context, id string) error {
	if _, err := db.write.ExecContext(ctx, "DELETE FROM inbound_subscriptions WHERE id = ?", id); err != nil {
		return fmt.Errorf("sqlite: delete subscription %s: %w", id, err)
	}
	return nil
}

// DeltaLink implements inbound.Store.
func (db *DB) DeltaLink(ctx context.Context, mailbox string) (string, error) {
	var link string
	err := db.read.QueryRowContext(ctx, "SELECT link FROM inbound_delta_links WHERE mailbox = ?", strings.ToLower(mailbox)).Scan(&link)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("sqlite: delta link of %s: %w", mailbox, err)
	}
	return link, nil
}

// SaveDeltaLink implements inbound.Store.
func (db *DB) SaveDeltaLink(ctx context.Context, mailbox, link string) error {
	if _, err := db.write.ExecContext(ctx, `INSERT INTO inbound_delta_links (mailbox, link) VALUES (?, ?)
		ON CONFLICT (mailbox) DO UPDATE SET link = excluded.link`, strings.ToLower(mailbox), link); err != nil {
		return fmt.Errorf("sqlite: save delta link of %s: %w", mailbox, err)
	}
	return nil
}

// ActiveSenders implements inbound.Store: owners of jobs sent since, and of followed messages created
// since that no job sends, as the Outlook add-in has Outlook send its own drafts.
func (db *DB) ActiveSenders(ctx context.Context, since time.Time) ([]string, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT lower(owner) FROM delivery_jobs WHERE status = 'SENT' AND sent_at >= ?1
		UNION SELECT lower(m.owner) FROM messages m WHERE m.created_at >= ?1 AND m.following = 1
			AND NOT EXISTS (SELECT 1 FROM delivery_jobs j WHERE j.message_id = m.id)
		ORDER BY 1`, since.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("sqlite: active senders: %w", err)
	}
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return nil, fmt.Errorf("sqlite: active senders: %w", err)
		}
		out = append(out, s)
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("sqlite: active senders: %w", err)
	}
	return out, nil
}

// MatchSend implements inbound.Store.
func (db *DB) MatchSend(ctx context.Context, ids []string, conversationID string) (inbound.Match, error) {
	var m inbound.Match
	for _, id := range ids {
		err := db.read.QueryRowContext(ctx, `SELECT message_id, render FROM render_sends WHERE internet_message_id = ?
			AND internet_message_id != '' ORDER BY message_id, render LIMIT 1`, id).Scan(&m.MessageID, &m.Render)
		if err == nil {
			return m, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return m, fmt.Errorf("sqlite: match send %s: %w", id, err)
		}
	}
	if conversationID != "" {
		err := db.read.QueryRowContext(ctx, `SELECT message_id, render FROM render_sends WHERE conversation_id = ?
			ORDER BY message_id, render LIMIT 1`, conversationID).Scan(&m.MessageID, &m.Render)
		if err == nil {
			return m, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return m, fmt.Errorf("sqlite: match conversation %s: %w", conversationID, err)
		}
	}
	return m, fmt.Errorf("sqlite: match send: %w", followed.ErrNotFound)
}

// RecordOutlookSend implements inbound.Store in one statement, so a job created meanwhile is respected.
func (db *DB) RecordOutlookSend(ctx context.Context, s inbound.OutlookSend) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO render_sends (message_id, render, draft_id, internet_message_id,
		conversation_id, sent_at) SELECT ?1, ?2, '', ?3, ?4, ?5
		WHERE EXISTS (SELECT 1 FROM messages WHERE id = ?1) AND NOT EXISTS (SELECT 1 FROM delivery_jobs WHERE message_id = ?1)
		ON CONFLICT (message_id, render) DO NOTHING`,
		s.MessageID, s.Render, s.InternetMessageID, s.ConversationID, s.SentAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("sqlite: record Outlook send of %s/%d: %w", s.MessageID, s.Render, err)
	}
	return nil
}

// AddSoftBounce implements inbound.Store. The streak restarts when the address opened (as a person) or
// replied after the last soft bounce counted, read from the events in the same transaction.
func (db *DB) AddSoftBounce(ctx context.Context, email, eventID string, at time.Time) (int, error) {
	email = strings.ToLower(email)
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("sqlite: soft bounce of %s: %w", email, err)
	}
	defer tx.Rollback()
	var streak int
	var last int64
	err = tx.QueryRowContext(ctx, "SELECT streak, last_at FROM inbound_bounce_streaks WHERE email = ?", email).Scan(&streak, &last)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("sqlite: soft bounce of %s: %w", email, err)
	}
	res, err := tx.ExecContext(ctx, "INSERT INTO inbound_soft_bounces (event_id, email) VALUES (?, ?) ON CONFLICT DO NOTHING", eventID, email)
	if err != nil {
		return 0, fmt.Errorf("sqlite: soft bounce of %s: %w", email, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return streak, nil // counted already
	}
	if streak > 0 {
		var engaged int
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM recipients r JOIN events e
			ON e.seq IN `+eventsOf("r.message_id", "at > ?2")+` AND e.recipient = r.idx
			WHERE r.email = ?1 AND e.machine = 0 AND e.kind IN ('OPENED', 'REPLIED'))`,
			email, last).Scan(&engaged); err != nil {
			return 0, fmt.Errorf("sqlite: soft bounce of %s: engagement: %w", email, err)
		}
		if engaged == 1 {
			streak = 0
		}
	}
	streak++
	if _, err := tx.ExecContext(ctx, `INSERT INTO inbound_bounce_streaks (email, streak, last_at) VALUES (?, ?, ?)
		ON CONFLICT (email) DO UPDATE SET streak = excluded.streak, last_at = max(last_at, excluded.last_at)`,
		email, streak, at.UnixMilli()); err != nil {
		return 0, fmt.Errorf("sqlite: soft bounce of %s: %w", email, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("sqlite: soft bounce of %s: commit: %w", email, err)
	}
	return streak, nil
}

// ResetBounceStreak implements inbound.Store.
func (db *DB) ResetBounceStreak(ctx context.Context, email string) error {
	if _, err := db.write.ExecContext(ctx, "DELETE FROM inbound_bounce_streaks WHERE email = ?", strings.ToLower(email)); err != nil {
		return fmt.Errorf("sqlite: reset bounce streak of %s: %w", email, err)
	}
	return nil
}
