package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/engage-email/engage/followed"
)

// rowsPerStatement bounds a multi-row statement: 200 events of 16 columns stay far below SQLite's
// variable limit, and longer statements stopped paying off when measured.
const rowsPerStatement = 200

type messageInfo struct {
	owner, subject string
	recipients     []string
}

// RecordEvents implements followed.Store: one immediate transaction per batch; the audience table's
// primary key makes "first" a fact the database decides, so concurrent writers (even two processes on
// one file) agree on exactly one first open. A batch costs a handful of statements whatever its size:
// multi-row inserts whose RETURNING clause says which rows were new, one multi-row statement each for
// message and link counters, and a lookup of the messages opened for the first time.
func (db *DB) RecordEvents(ctx context.Context, evs []followed.Event) ([]followed.FirstOpen, error) {
	if len(evs) == 0 {
		return nil, nil
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: record events: %w", err)
	}
	defer tx.Rollback()

	// An id twice in one batch is one event; events of a message since erased have nothing to attach
	// to, and the insert skips them.
	kept := make([]followed.Event, 0, len(evs))
	ids := make(map[string]bool, len(evs))
	for _, ev := range evs {
		if !ids[ev.ID] {
			ids[ev.ID] = true
			kept = append(kept, ev)
		}
	}
	inserted, err := db.insertEvents(ctx, tx, kept)
	if err != nil {
		return nil, fmt.Errorf("sqlite: record events: %w", err)
	}
	fresh := kept[:0]
	for _, ev := range kept {
		if inserted[ev.ID] {
			fresh = append(fresh, ev) // the others were stored before: a replay
		}
	}

	// The first event of the batch to name an audience key claims it; the database says whether an
	// earlier batch claimed it already, unless this process knows it did.
	claims := followed.ClaimsOf(fresh)
	epoch, err := db.epochOf(ctx, tx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: record events: %w", err)
	}
	claimed, err := db.insertAudience(ctx, tx, db.claimed.unknown(epoch, claims))
	if err != nil {
		return nil, fmt.Errorf("sqlite: record events: %w", err)
	}
	tally := followed.TallyOf(fresh, claims, claimed)
	// Owner, subject and addresses are needed only to announce first opens, rare once a message is read.
	infos, err := messageInfos(ctx, tx, tally.FirstOpens)
	if err != nil {
		return nil, fmt.Errorf("sqlite: record events: %w", err)
	}
	firsts := make([]followed.FirstOpen, 0, len(tally.FirstOpens))
	for _, ev := range tally.FirstOpens {
		info := infos[ev.MessageID]
		fo := followed.FirstOpen{MessageID: ev.MessageID, Owner: info.owner, Subject: info.subject,
			Recipient: ev.Recipient, At: ev.At, Device: ev.Device}
		if ev.Recipient >= 0 && ev.Recipient < len(info.recipients) {
			fo.Email = info.recipients[ev.Recipient]
		}
		firsts = append(firsts, fo)
	}
	if err := db.updateCounters(ctx, tx, tally.Messages); err != nil {
		return nil, fmt.Errorf("sqlite: record events: %w", err)
	}
	if err := db.updateLinks(ctx, tx, tally.Links); err != nil {
		return nil, fmt.Errorf("sqlite: record events: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlite: record events: commit: %w", err)
	}
	db.claimed.learn(epoch, claims.Keys)
	return firsts, nil
}

// placeholders returns n groups of cols question marks, "(?,?),(?,?)".
func placeholders(n, cols int) string {
	row := "(" + strings.Repeat("?,", cols-1) + "?)"
	var b strings.Builder
	b.Grow(n * (len(row) + 1))
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(row)
	}
	return b.String()
}

// chunkSizes are the only row counts a multi-row statement is built for, largest first, so that each
// text is parsed once, at open, and then reused. Every count up to exactSizes has its own text: a
// group commit at 64 connections holds 5 to 30 events, and measured, a batch of 15 split 4+4+4+1+1+1
// took 670 µs to commit where 16 in one statement took 560 µs. Beyond that, a few coarse sizes bound
// the number of texts (and so the memory they hold and the time Open takes to prepare them).
var chunkSizes = sizes()

// exactSizes is the largest row count that always goes in one statement.
const exactSizes = 32

func sizes() []int {
	s := []int{rowsPerStatement, 128, 96, 64, 48, 40}
	for n := exactSizes; n >= 1; n-- {
		s = append(s, n)
	}
	return s
}

// chunks calls fn with [lo, hi) windows over n items, each as long as one of chunkSizes.
func chunks(n int, fn func(lo, hi int) error) error {
	for lo := 0; lo < n; {
		size := 1
		for _, c := range chunkSizes {
			if c <= n-lo {
				size = c
				break
			}
		}
		if err := fn(lo, lo+size); err != nil {
			return err
		}
		lo += size
	}
	return nil
}

// messageInfos looks up the messages evs name.
func messageInfos(ctx context.Context, tx *sql.Tx, evs []followed.Event) (map[string]*messageInfo, error) {
	infos := map[string]*messageInfo{}
	var ids []any
	for _, ev := range evs {
		if _, ok := infos[ev.MessageID]; !ok {
			infos[ev.MessageID] = nil
			ids = append(ids, ev.MessageID)
		}
	}
	var individual []any
	err := chunks(len(ids), func(lo, hi int) error {
		rows, err := tx.QueryContext(ctx, "SELECT id, owner, subject, individual FROM messages WHERE id IN ("+
			strings.TrimSuffix(strings.Repeat("?,", hi-lo), ",")+")", ids[lo:hi]...)
		if err != nil {
			return fmt.Errorf("messages: %w", err)
		}
		for rows.Next() {
			var id string
			var ind bool
			info := &messageInfo{}
			if err := rows.Scan(&id, &info.owner, &info.subject, &ind); err != nil {
				rows.Close()
				return fmt.Errorf("messages: %w", err)
			}
			infos[id] = info
			if ind {
				individual = append(individual, id)
			}
		}
		if err := closeRows(rows); err != nil {
			return fmt.Errorf("messages: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = chunks(len(individual), func(lo, hi int) error {
		rows, err := tx.QueryContext(ctx, "SELECT message_id, email FROM recipients WHERE message_id IN ("+
			strings.TrimSuffix(strings.Repeat("?,", hi-lo), ",")+") ORDER BY message_id, idx", individual[lo:hi]...)
		if err != nil {
			return fmt.Errorf("recipients: %w", err)
		}
		for rows.Next() {
			var id, email string
			if err := rows.Scan(&id, &email); err != nil {
				rows.Close()
				return fmt.Errorf("recipients: %w", err)
			}
			infos[id].recipients = append(infos[id].recipients, email)
		}
		if err := closeRows(rows); err != nil {
			return fmt.Errorf("recipients: %w", err)
		}
		return nil
	})
	return infos, err
}

// insertEvents inserts the events of messages that exist (ids unique within the batch) and returns the
// ids that were new. A chunk's statement says only how many rows it inserted: all of them, but for a
// replay or an erased message, so the ids are read back only when some were left out. Measured, a
// RETURNING clause on every chunk cost a batch of 20 opens 5-7 % of its commit.
func (db *DB) insertEvents(ctx context.Context, tx *sql.Tx, evs []followed.Event) (map[string]bool, error) {
	inserted := make(map[string]bool, len(evs))
	args := make([]any, 0, rowsPerStatement*16)
	err := chunks(len(evs), func(lo, hi int) error {
		args = args[:0]
		for _, ev := range evs[lo:hi] {
			args = append(args, ev.ID, ev.MessageID, string(ev.Kind), ev.At.UnixMilli(), ev.Recipient, ev.Link, ev.URL,
				ev.IP, ev.UserAgent, ev.Method, string(ev.Device.Type), ev.Device.OS, ev.Device.Client, ev.Machine, ev.Reason, ev.Rule)
		}
		stmt, err := db.stmt(ctx, tx, insertEventsSQL(hi-lo))
		if err != nil {
			return fmt.Errorf("insert events: %w", err)
		}
		res, err := stmt.ExecContext(ctx, args...)
		if err != nil {
			return fmt.Errorf("insert events: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("insert events: %w", err)
		}
		switch {
		case n == int64(hi-lo):
			for _, ev := range evs[lo:hi] {
				inserted[ev.ID] = true
			}
		case n > 0:
			if err := newestOf(ctx, tx, evs[lo:hi], n, inserted); err != nil {
				return fmt.Errorf("insert events: %w", err)
			}
		}
		return nil
	})
	return inserted, err
}

// newestOf adds to inserted the ids of the n events of evs that the statement just run inserted. Each
// row it inserted took a seq above every row stored before it (AUTOINCREMENT), so of evs' rows they are
// the n with the highest seqs; the others were stored by an earlier batch, or not at all.
func newestOf(ctx context.Context, tx *sql.Tx, evs []followed.Event, n int64, inserted map[string]bool) error {
	ids := make([]any, 0, len(evs)+1)
	for _, ev := range evs {
		ids = append(ids, ev.ID)
	}
	rows, err := tx.QueryContext(ctx, "SELECT id FROM events WHERE id IN ("+strings.TrimSuffix(strings.Repeat("?,", len(evs)), ",")+
		") ORDER BY seq DESC LIMIT ?", append(ids, n)...)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		inserted[id] = true
	}
	return closeRows(rows)
}

// insertAudience claims the keys in order, each at the time of the event that claims it, and returns
// the keys no earlier batch had claimed.
func (db *DB) insertAudience(ctx context.Context, tx *sql.Tx, c followed.Claims) (map[followed.AudienceKey]bool, error) {
	fresh := make(map[followed.AudienceKey]bool, len(c.Keys))
	args := make([]any, 0, rowsPerStatement*4)
	err := chunks(len(c.Keys), func(lo, hi int) error {
		args = args[:0]
		for _, k := range c.Keys[lo:hi] {
			args = append(args, k.MessageID, k.Recipient, k.What, c.By[k].At.UnixMilli())
		}
		stmt, err := db.stmt(ctx, tx, insertAudienceSQL(hi-lo))
		if err != nil {
			return fmt.Errorf("insert audience: %w", err)
		}
		rows, err := stmt.QueryContext(ctx, args...)
		if err != nil {
			return fmt.Errorf("insert audience: %w", err)
		}
		for rows.Next() {
			var k followed.AudienceKey
			if err := rows.Scan(&k.MessageID, &k.Recipient, &k.What); err != nil {
				rows.Close()
				return fmt.Errorf("insert audience: %w", err)
			}
			fresh[k] = true
		}
		if err := closeRows(rows); err != nil {
			return fmt.Errorf("insert audience: %w", err)
		}
		return nil
	})
	return fresh, err
}

// updateCounters adds each message's delta with one upsert per chunk of messages. Every message has
// its counters row from its creation, so each row takes the update arm (and a row somehow missing
// would be inserted holding the delta, which is right too); measured, the upsert costs a batch of 20
// opens about 60 µs less than an UPDATE ... FROM, which materialises the deltas and joins them.
func (db *DB) updateCounters(ctx context.Context, tx *sql.Tx, deltas []followed.MessageDelta) error {
	args := make([]any, 0, rowsPerStatement*11)
	return chunks(len(deltas), func(lo, hi int) error {
		args = args[:0]
		for _, d := range deltas[lo:hi] {
			args = append(args, d.MessageID, d.Opens, d.UniqueOpens, d.Clicks, d.UniqueClicks, d.AttachmentOpens, d.Replies,
				d.MachineOpens, d.MachineClicks, unixMilliOrZero(d.FirstOpen), unixMilliOrZero(d.LastOpen))
		}
		stmt, err := db.stmt(ctx, tx, updateCountersSQL(hi-lo))
		if err != nil {
			return fmt.Errorf("counters of %d messages: %w", hi-lo, err)
		}
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("counters of %d messages: %w", hi-lo, err)
		}
		return nil
	})
}

// unixMilliOrZero is t in Unix milliseconds, 0 for the zero time: the counters' "none" (no event is
// recorded at the epoch).
func unixMilliOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// updateLinks adds each link's clicks with one UPDATE ... FROM per chunk of links.
func (db *DB) updateLinks(ctx context.Context, tx *sql.Tx, deltas []followed.LinkDelta) error {
	args := make([]any, 0, rowsPerStatement*4)
	return chunks(len(deltas), func(lo, hi int) error {
		args = args[:0]
		for _, d := range deltas[lo:hi] {
			args = append(args, d.MessageID, d.Link, d.Clicks, d.UniqueClicks)
		}
		stmt, err := db.stmt(ctx, tx, updateLinksSQL(hi-lo))
		if err != nil {
			return fmt.Errorf("clicks of %d links: %w", hi-lo, err)
		}
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("clicks of %d links: %w", hi-lo, err)
		}
		return nil
	})
}

// The hot statements of RecordEvents, for n rows; prepared for every chunk size when the store opens.
func insertEventsSQL(n int) string {
	return `INSERT OR IGNORE INTO events (id, message_id, kind, at, recipient, link, url, ip, user_agent, method,
		device_type, device_os, device_client, machine, reason, rule)
		SELECT * FROM (VALUES ` + placeholders(n, 16) + `) AS v
		WHERE EXISTS (SELECT 1 FROM messages WHERE messages.id = v.column2)
		AND (v.column3 NOT IN ('OPENED', 'LINK_CLICKED', 'ATTACHMENT_OPENED')
			OR NOT EXISTS (SELECT 1 FROM untracked u WHERE u.message_id = v.column2 AND u.recipient IN (v.column5, -1)))`
}

func insertAudienceSQL(n int) string {
	return "INSERT OR IGNORE INTO audience (message_id, recipient, what, at) VALUES " + placeholders(n, 4) +
		" RETURNING message_id, recipient, what"
}

func updateCountersSQL(n int) string {
	row := "(?,?,?,?,?,?,?,?,?,nullif(?,0),nullif(?,0))"
	return `INSERT INTO counters (message_id, opens, unique_opens, clicks, unique_clicks, attachment_opens, replies,
			machine_opens, machine_clicks, first_opened_at, last_opened_at) VALUES ` + strings.TrimSuffix(strings.Repeat(row+",", n), ",") + `
		ON CONFLICT (message_id) DO UPDATE SET opens = opens + excluded.opens, unique_opens = unique_opens + excluded.unique_opens,
			clicks = clicks + excluded.clicks, unique_clicks = unique_clicks + excluded.unique_clicks,
			attachment_opens = attachment_opens + excluded.attachment_opens, replies = replies + excluded.replies,
			machine_opens = machine_opens + excluded.machine_opens, machine_clicks = machine_clicks + excluded.machine_clicks,
			first_opened_at = CASE WHEN first_opened_at IS NULL OR first_opened_at > excluded.first_opened_at
				THEN coalesce(excluded.first_opened_at, first_opened_at) ELSE first_opened_at END,
			last_opened_at = CASE WHEN last_opened_at IS NULL OR last_opened_at < excluded.last_opened_at
				THEN coalesce(excluded.last_opened_at, last_opened_at) ELSE last_opened_at END`
}

func updateLinksSQL(n int) string {
	return `WITH d(mid, idx, c, uc) AS (VALUES ` + placeholders(n, 4) + `)
			UPDATE links SET clicks = clicks + d.c, unique_clicks = unique_clicks + d.uc
			FROM d WHERE links.message_id = d.mid AND links.idx = d.idx`
}

// hotStatements are every text RecordEvents runs, so Open can prepare them before any transaction.
func hotStatements() []string {
	qs := []string{epochSQL}
	for _, n := range chunkSizes {
		qs = append(qs, insertEventsSQL(n), insertAudienceSQL(n), updateCountersSQL(n), updateLinksSQL(n))
	}
	return qs
}
