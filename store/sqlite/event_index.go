package sqlite

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// indexStep bounds one indexing transaction, so that a backlog (a burst, or an import) holds the one
// writer about a millisecond at a time and tracking commits go between: with 1,000 a step, the load
// tool's p99 rose by about 2 ms.
const indexStep = 250

// indexRound bounds the events one round takes from the end of the events table. A round indexes
// them in message order, a step at a time, so that each leaf of the index is written about once per
// round rather than once per step: taken in the order they were stored, 250 events over 100 messages
// wrote about 200 pages, as many as the tracking commits that stored them. The end of the table stays
// unindexed until the round's last step, so it also bounds what reads by message scan meanwhile.
const indexRound = 16384

// defaultIndexEvery is how often new events are indexed by message. A tick runs rounds until the
// index has caught up, so the interval bounds the unindexed end of the events table that reads by
// message scan.
const defaultIndexEvery = 500 * time.Millisecond

// unindexed is true of an event not indexed yet: the end of the events table that reads by message
// scan. Used unqualified, seq is the innermost table's.
const unindexed = "seq > (SELECT upto FROM event_index_state)"

// indexed is true of an entry of event_index whose round has ended. A round writes its entries before
// it moves the end, so an entry above it is also found by scanning the end, and reads leave it out.
const indexed = "seq <= (SELECT upto FROM event_index_state)"

// eventsOf is an SQL set of the seqs of the events of the message msg names (a column such as
// "a.message_id", or a numbered parameter; it appears twice): those in event_index, and the newest,
// not indexed yet, found by scanning the events table from the end of the index. where, if not
// empty, narrows both by columns the two tables share (at, id), so the index range is narrowed too.
func eventsOf(msg, where string) string {
	if where != "" {
		where = " AND " + where
	}
	return `(SELECT seq FROM event_index WHERE message_id = ` + msg + ` AND ` + indexed + where + ` UNION ALL
		SELECT seq FROM events WHERE ` + unindexed + ` AND message_id = ` + msg + where + `)`
}

// indexColumns are the columns of event_index, each a copy of the event's.
const indexColumns = "message_id, at, id, seq, kind, recipient, machine"

// messageEvents selects cols of the events of the message msg names (a column, or a numbered
// parameter; it appears twice) that where accepts, as rows of "e": the indexed ones from
// event_index, and the newest from the end of the events table; cols and where may name only the
// columns event_index covers (indexColumns). Unlike "seq IN eventsOf(...)", it builds no set and
// reads no event rows for the indexed ones.
func messageEvents(cols, msg, where string) string {
	return `SELECT ` + cols + ` FROM ` + indexedEvents(msg, where) + `
		UNION ALL
		SELECT ` + cols + ` FROM events e WHERE e.` + unindexed + ` AND e.message_id = ` + msg + ` AND ` + where
}

// indexedEvents is a FROM clause of the indexed events of the message msg names that where accepts,
// as rows of "e" naming only the columns event_index covers.
func indexedEvents(msg, where string) string {
	return `event_index e WHERE e.message_id = ` + msg + ` AND e.` + indexed + ` AND ` + where
}

// allIndexed is true when no event waits to be indexed. Evaluated once per statement, it lets a
// subquery run for every row of an outer query skip the other arm of messageEvents, which costs
// as much again even with nothing to scan.
const allIndexed = `(SELECT upto FROM event_index_state) >= (SELECT coalesce(max(seq), 0) FROM events)`

// indexEvents runs one round: it indexes up to indexRound events not indexed yet, a step at a time,
// and reports how many it took.
func (db *DB) indexEvents(ctx context.Context) (int, error) {
	from, to, seqs, err := db.nextRound(ctx)
	if err != nil {
		return 0, err
	}
	n := len(seqs)
	for len(seqs) > 0 {
		step := seqs[:min(indexStep, len(seqs))]
		seqs = seqs[len(step):]
		end := int64(-1) // the last step moves the end; the others leave it
		if len(seqs) == 0 {
			end = to
		}
		if err := db.indexStep(ctx, step, from, end); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// nextRound reads, on a reader, the indexed end (from) and up to indexRound events above it, sorted
// by message (seqs), and the newest of them (to). On a reader, so that an idle store takes no write
// lock every tick, and the round's events are sorted without holding the writer.
func (db *DB) nextRound(ctx context.Context) (from, to int64, seqs []int64, err error) {
	if err := db.read.QueryRowContext(ctx, "SELECT upto FROM event_index_state").Scan(&from); err != nil {
		return 0, 0, nil, fmt.Errorf("sqlite: index events: %w", err)
	}
	rows, err := db.read.QueryContext(ctx, `SELECT seq FROM (SELECT seq, message_id FROM events WHERE seq > ?
		ORDER BY seq LIMIT ?) ORDER BY message_id, seq`, from, indexRound)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("sqlite: index events: %w", err)
	}
	to = from
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq); err != nil {
			rows.Close()
			return 0, 0, nil, fmt.Errorf("sqlite: index events: %w", err)
		}
		seqs = append(seqs, seq)
		to = max(to, seq)
	}
	if err := closeRows(rows); err != nil {
		return 0, 0, nil, fmt.Errorf("sqlite: index events: %w", err)
	}
	return from, to, seqs, nil
}

// indexStep indexes the events at seqs, which are sorted by message, in one transaction, and moves
// the indexed end from from to end unless end is negative. The events are read again in the
// transaction, so that one erased or relabelled since the round began is indexed as it now is.
func (db *DB) indexStep(ctx context.Context, seqs []int64, from, end int64) error {
	list := make([]byte, 0, 8*len(seqs)+2)
	list = append(list, '[')
	for i, s := range seqs {
		if i > 0 {
			list = append(list, ',')
		}
		list = strconv.AppendInt(list, s, 10)
	}
	list = append(list, ']')
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: index events: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, indexStepSQL, string(list)); err != nil {
		return fmt.Errorf("sqlite: index events: %w", err)
	}
	if end >= 0 {
		// Only from the end this round began at: a round that ran meanwhile has moved it already.
		if _, err := tx.ExecContext(ctx, "UPDATE event_index_state SET upto = ? WHERE upto = ?", end, from); err != nil {
			return fmt.Errorf("sqlite: index events: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: index events: commit: %w", err)
	}
	return nil
}

// tickRounds bounds the rounds one tick runs, below the ten seconds every gives it, so that a large
// backlog (an import, a long outage's replay) drains over several ticks instead of ending each in a
// timeout that would be logged as a failure.
const tickRounds = 5 * time.Second

// indexRoundsUntilCaughtUp runs indexing rounds while they come back full, so that a backlog drains
// at the writer's pace, one step at a time; after an error the next tick tries again, and reads scan
// the unindexed end meanwhile.
func (db *DB) indexRoundsUntilCaughtUp(ctx context.Context) error {
	start := time.Now()
	for {
		n, err := db.indexEvents(ctx)
		if err != nil || n < indexRound || time.Since(start) > tickRounds {
			return err
		}
		select {
		case <-db.stop:
			return nil
		default:
		}
	}
}

// indexStepSQL copies the events whose seqs its JSON list holds into event_index, in the list's
// order: CROSS JOIN keeps the list the outer loop, so each event is found by seq as it comes and
// no sorter runs, and since the list is sorted by message, its entries still go in leaf by leaf.
var indexStepSQL = `INSERT OR IGNORE INTO event_index (` + indexColumns + `)
	SELECT ` + prefixed("e.", indexColumns) + ` FROM json_each(?) AS j CROSS JOIN events AS e ON e.seq = j.value`
