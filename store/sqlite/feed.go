package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/engage-email/engage/feed"
	"github.com/engage-email/engage/followed"
)

var _ feed.Store = (*DB)(nil)

// Responses implements feed.Store. It reads in one transaction, so the newest position and the rows
// come from one snapshot; with a single writer, positions become visible in order, so every event
// at or below that position is in the snapshot and a later one is always above it.
func (db *DB) Responses(ctx context.Context, q feed.Query) (feed.Page, error) {
	tx, err := db.read.BeginTx(ctx, nil)
	if err != nil {
		return feed.Page{}, fmt.Errorf("sqlite: responses: %w", err)
	}
	defer tx.Rollback()
	var newest int64
	if err := tx.QueryRowContext(ctx, "SELECT coalesce(max(seq), 0) FROM events").Scan(&newest); err != nil {
		return feed.Page{}, fmt.Errorf("sqlite: responses: %w", err)
	}
	upper := min(newest, q.After+feed.ScanLimit)
	if q.Through > 0 {
		upper = min(upper, q.Through)
	}
	page := feed.Page{Through: max(upper, q.After), Newest: newest}
	if upper <= q.After || len(q.Kinds) == 0 || q.Limit <= 0 {
		return page, nil
	}
	args := []any{q.After, upper}
	for _, k := range q.Kinds {
		args = append(args, string(k))
	}
	machine := ""
	if !q.IncludeMachine {
		machine = " AND e.machine = 0"
	}
	args = append(args, q.Limit)
	rows, err := tx.QueryContext(ctx, `SELECT e.seq, e.id, e.kind, e.message_id, m.subject, m.owner, coalesce(r.email, ''),
		e.at, e.url, e.device_type, e.device_os, e.device_client, e.machine, e.reason
		FROM events e JOIN messages m ON m.id = e.message_id
		LEFT JOIN recipients r ON r.message_id = e.message_id AND r.idx = e.recipient
		WHERE e.seq > ? AND e.seq <= ? AND e.kind IN (`+strings.TrimSuffix(strings.Repeat("?,", len(q.Kinds)), ",")+`)`+machine+`
		ORDER BY e.seq LIMIT ?`, args...)
	if err != nil {
		return feed.Page{}, fmt.Errorf("sqlite: responses: %w", err)
	}
	for rows.Next() {
		var r feed.Record
		var kind, dtype string
		var at int64
		if err := rows.Scan(&r.Seq, &r.EventID, &kind, &r.MessageID, &r.Subject, &r.Owner, &r.Recipient, &at, &r.URL,
			&dtype, &r.Device.OS, &r.Device.Client, &r.Machine, &r.Reason); err != nil {
			rows.Close()
			return feed.Page{}, fmt.Errorf("sqlite: responses: %w", err)
		}
		r.Kind, r.Device.Type, r.At = followed.EventKind(kind), followed.DeviceType(dtype), time.UnixMilli(at).UTC()
		r.Category, _ = feed.CategoryOf(r.Kind)
		page.Records = append(page.Records, r)
	}
	if err := closeRows(rows); err != nil {
		return feed.Page{}, fmt.Errorf("sqlite: responses: %w", err)
	}
	if len(page.Records) == q.Limit {
		page.Through = page.Records[len(page.Records)-1].Seq // the page is full: the rest of the range is unread
	}
	return page, nil
}

// NewestSeq implements feed.Store.
func (db *DB) NewestSeq(ctx context.Context) (int64, error) {
	var seq int64
	if err := db.read.QueryRowContext(ctx, "SELECT coalesce(max(seq), 0) FROM events").Scan(&seq); err != nil {
		return 0, fmt.Errorf("sqlite: newest event: %w", err)
	}
	return seq, nil
}

const endpointColumns = `id, url, secret, categories, interval_ms, created_by, created_at, updated_by, updated_at, cursor,
	batch_key, batch_first, batch_last, batch_through, batch_categories, batch_attempts, batch_formed_at,
	next_at, failing_since, disabled_at, disabled_reason, lease_owner, lease_until`

func joinCategories(cs []feed.Category) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = string(c)
	}
	return strings.Join(s, ",")
}

func splitCategories(s string) []feed.Category {
	var out []feed.Category
	for _, c := range strings.Split(s, ",") {
		if c != "" {
			out = append(out, feed.Category(c))
		}
	}
	return out
}

func scanEndpoint(row interface{ Scan(...any) error }) (feed.Endpoint, error) {
	var ep feed.Endpoint
	var cats, bkey, bcats string
	var interval, created, updated, nextAt, leaseUntil int64
	var bfirst, blast, bthrough int64
	var attempts int
	var formed, failing, disabled sql.NullInt64
	if err := row.Scan(&ep.ID, &ep.URL, &ep.Secret, &cats, &interval, &ep.CreatedBy, &created, &ep.UpdatedBy, &updated,
		&ep.State.Cursor, &bkey, &bfirst, &blast, &bthrough, &bcats, &attempts, &formed, &nextAt, &failing, &disabled,
		&ep.State.DisabledReason, &ep.LeaseOwner, &leaseUntil); err != nil {
		return feed.Endpoint{}, err
	}
	ep.Categories, ep.Interval = splitCategories(cats), time.Duration(interval)*time.Millisecond
	ep.CreatedAt, ep.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	ep.State.NextAt, ep.State.FailingSince, ep.State.DisabledAt = time.UnixMilli(nextAt).UTC(), fromMillis(failing), fromMillis(disabled)
	if leaseUntil != 0 {
		ep.LeaseUntil = time.UnixMilli(leaseUntil).UTC()
	}
	if bkey != "" {
		ep.State.Batch = &feed.Batch{Key: bkey, First: bfirst, Last: blast, Through: bthrough, Categories: splitCategories(bcats),
			Attempts: attempts, FormedAt: fromMillis(formed)}
	}
	return ep, nil
}

// stateArgs are the state columns' values, in the order SaveState names them.
func stateArgs(st feed.State) []any {
	b := feed.Batch{}
	if st.Batch != nil {
		b = *st.Batch
	}
	return []any{st.Cursor, b.Key, b.First, b.Last, b.Through, joinCategories(b.Categories), b.Attempts, millis(b.FormedAt),
		st.NextAt.UnixMilli(), millis(st.FailingSince), millis(st.DisabledAt), st.DisabledReason}
}

// CreateEndpoint implements feed.Store.
func (db *DB) CreateEndpoint(ctx context.Context, ep feed.Endpoint) error {
	args := append([]any{ep.ID, ep.URL, ep.Secret, joinCategories(ep.Categories), ep.Interval.Milliseconds(), ep.CreatedBy,
		ep.CreatedAt.UnixMilli(), ep.UpdatedBy, ep.UpdatedAt.UnixMilli()}, stateArgs(ep.State)...)
	args = append(args, ep.LeaseOwner, leaseMillis(ep.LeaseUntil))
	if _, err := db.write.ExecContext(ctx, "INSERT INTO feed_endpoints ("+endpointColumns+") VALUES ("+
		strings.TrimSuffix(strings.Repeat("?,", len(args)), ",")+")", args...); err != nil {
		return fmt.Errorf("sqlite: create endpoint %s: %w", ep.ID, err)
	}
	return nil
}

// Endpoint implements feed.Store.
func (db *DB) Endpoint(ctx context.Context, id string) (feed.Endpoint, error) {
	ep, err := scanEndpoint(db.read.QueryRowContext(ctx, "SELECT "+endpointColumns+" FROM feed_endpoints WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return feed.Endpoint{}, fmt.Errorf("sqlite: endpoint %s: %w", id, followed.ErrNotFound)
	}
	if err != nil {
		return feed.Endpoint{}, fmt.Errorf("sqlite: endpoint %s: %w", id, err)
	}
	return ep, nil
}

// Endpoints implements feed.Store.
func (db *DB) Endpoints(ctx context.Context) ([]feed.Endpoint, error) {
	rows, err := db.read.QueryContext(ctx, "SELECT "+endpointColumns+" FROM feed_endpoints ORDER BY created_at, id")
	if err != nil {
		return nil, fmt.Errorf("sqlite: endpoints: %w", err)
	}
	var out []feed.Endpoint
	for rows.Next() {
		ep, err := scanEndpoint(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("sqlite: endpoints: %w", err)
		}
		out = append(out, ep)
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("sqlite: endpoints: %w", err)
	}
	return out, nil
}

// UpdateEndpoint implements feed.Store.
func (db *DB) UpdateEndpoint(ctx context.Context, ep feed.Endpoint, reset bool) error {
	q := `UPDATE feed_endpoints SET url = ?, secret = ?, categories = ?, interval_ms = ?, updated_by = ?, updated_at = ?`
	args := []any{ep.URL, ep.Secret, joinCategories(ep.Categories), ep.Interval.Milliseconds(), ep.UpdatedBy, ep.UpdatedAt.UnixMilli()}
	if reset {
		q += `, disabled_at = NULL, disabled_reason = '', failing_since = NULL, batch_attempts = 0, next_at = ?`
		args = append(args, ep.UpdatedAt.UnixMilli())
	} else {
		q += `, next_at = min(next_at, ?)`
		args = append(args, ep.UpdatedAt.Add(ep.Interval).UnixMilli())
	}
	return db.changeEndpoint(ctx, "update", ep.ID, q+" WHERE id = ?", append(args, ep.ID)...)
}

// DeleteEndpoint implements feed.Store; the delivery log goes with it (ON DELETE CASCADE).
func (db *DB) DeleteEndpoint(ctx context.Context, id string) error {
	return db.changeEndpoint(ctx, "delete", id, "DELETE FROM feed_endpoints WHERE id = ?", id)
}

func (db *DB) changeEndpoint(ctx context.Context, what, id, q string, args ...any) error {
	res, err := db.write.ExecContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("sqlite: %s endpoint %s: %w", what, id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: %s endpoint %s: %w", what, id, err)
	} else if n == 0 {
		return fmt.Errorf("sqlite: %s endpoint %s: %w", what, id, followed.ErrNotFound)
	}
	return nil
}

// leaseMillis is a lease's end as stored: 0 when there is none.
func leaseMillis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// ClaimEndpoint implements feed.Store: one statement on the single writer, so an endpoint goes to one
// claimer; when it takes nothing, a second look says whether the endpoint is there at all.
func (db *DB) ClaimEndpoint(ctx context.Context, id, instance string, now, until time.Time) (feed.Endpoint, error) {
	ep, err := scanEndpoint(db.write.QueryRowContext(ctx, `UPDATE feed_endpoints SET lease_owner = ?1, lease_until = ?2
		WHERE id = ?3 AND disabled_at IS NULL AND next_at <= ?4 AND (lease_owner IN ('', ?1) OR lease_until <= ?4)
		RETURNING `+endpointColumns, instance, until.UnixMilli(), id, now.UnixMilli()))
	if errors.Is(err, sql.ErrNoRows) {
		return feed.Endpoint{}, fmt.Errorf("sqlite: claim endpoint %s: %w", id, db.absentOr(ctx, id, feed.ErrTaken))
	}
	if err != nil {
		return feed.Endpoint{}, fmt.Errorf("sqlite: claim endpoint %s: %w", id, err)
	}
	return ep, nil
}

// absentOr says why a guarded write to an endpoint matched nothing: followed.ErrNotFound when it is
// gone, else why (taken, or a lease lost).
func (db *DB) absentOr(ctx context.Context, id string, why error) error {
	var n int
	if err := db.write.QueryRowContext(ctx, "SELECT count(*) FROM feed_endpoints WHERE id = ?", id).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return followed.ErrNotFound
	}
	return why
}

// FixBatch implements feed.Store.
func (db *DB) FixBatch(ctx context.Context, id, instance string, st feed.State) error {
	return db.saveLeased(ctx, "fix batch of", id, instance, st, nil, false)
}

// SaveState implements feed.Store.
func (db *DB) SaveState(ctx context.Context, id, instance string, st feed.State, d *feed.Delivery) error {
	return db.saveLeased(ctx, "save endpoint state", id, instance, st, d, true)
}

// saveLeased writes an endpoint's state (and a log row) in one transaction while instance holds its
// lease, releasing the lease when asked; nothing is written when it does not hold it.
func (db *DB) saveLeased(ctx context.Context, what, id, instance string, st feed.State, d *feed.Delivery, release bool) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: %s %s: %w", what, id, err)
	}
	defer tx.Rollback()
	q := `UPDATE feed_endpoints SET cursor = ?, batch_key = ?, batch_first = ?, batch_last = ?,
		batch_through = ?, batch_categories = ?, batch_attempts = ?, batch_formed_at = ?, next_at = ?, failing_since = ?,
		disabled_at = ?, disabled_reason = ?`
	if release {
		q += `, lease_owner = '', lease_until = 0`
	}
	res, err := tx.ExecContext(ctx, q+` WHERE id = ? AND lease_owner = ?`, append(stateArgs(st), id, instance)...)
	if err != nil {
		return fmt.Errorf("sqlite: %s %s: %w", what, id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: %s %s: %w", what, id, err)
	} else if n == 0 {
		var exists int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM feed_endpoints WHERE id = ?", id).Scan(&exists); err != nil {
			return fmt.Errorf("sqlite: %s %s: %w", what, id, err)
		}
		if exists == 0 {
			return fmt.Errorf("sqlite: %s %s: %w", what, id, followed.ErrNotFound)
		}
		return fmt.Errorf("sqlite: %s %s: %w", what, id, feed.ErrLeaseLost)
	}
	if d != nil {
		if _, err := tx.ExecContext(ctx, `INSERT INTO feed_deliveries (id, endpoint_id, key, attempt, at, outcome, status_code,
			error, duration_ms, records, first_seq, last_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			d.ID, id, d.Key, d.Attempt, d.At.UnixMilli(), string(d.Outcome), d.StatusCode, d.Error, d.Duration.Milliseconds(),
			d.Records, d.First, d.Last); err != nil {
			return fmt.Errorf("sqlite: log delivery to %s: %w", id, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: %s %s: commit: %w", what, id, err)
	}
	return nil
}

// Deliveries implements feed.Store.
func (db *DB) Deliveries(ctx context.Context, endpointID string, limit int) ([]feed.Delivery, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT id, endpoint_id, key, attempt, at, outcome, status_code, error, duration_ms,
		records, first_seq, last_seq FROM feed_deliveries WHERE endpoint_id = ? ORDER BY at DESC, id DESC LIMIT ?`, endpointID, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: deliveries of %s: %w", endpointID, err)
	}
	var out []feed.Delivery
	for rows.Next() {
		var d feed.Delivery
		var at, dur int64
		var outcome string
		if err := rows.Scan(&d.ID, &d.EndpointID, &d.Key, &d.Attempt, &at, &outcome, &d.StatusCode, &d.Error, &dur,
			&d.Records, &d.First, &d.Last); err != nil {
			rows.Close()
			return nil, fmt.Errorf("sqlite: deliveries of %s: %w", endpointID, err)
		}
		d.At, d.Outcome, d.Duration = time.UnixMilli(at).UTC(), feed.Outcome(outcome), time.Duration(dur)*time.Millisecond
		out = append(out, d)
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("sqlite: deliveries of %s: %w", endpointID, err)
	}
	return out, nil
}

// PruneDeliveries implements feed.Store.
func (db *DB) PruneDeliveries(ctx context.Context, before time.Time, limit int) (int, error) {
	res, err := db.write.ExecContext(ctx, `DELETE FROM feed_deliveries WHERE id IN
		(SELECT id FROM feed_deliveries WHERE at < ? ORDER BY at LIMIT ?)`, before.UnixMilli(), limit)
	if err != nil {
		return 0, fmt.Errorf("sqlite: prune deliveries: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlite: prune deliveries: %w", err)
	}
	return int(n), nil
}
