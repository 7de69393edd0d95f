package sqlite

import (
	"context"
	"fmt"
	"time"
)

// indexStep bounds one indexing transaction, so that a backlog (a burst, or an import) holds the one
// writer about a millisecond at a time and tracking commits go between: with 1,000 a step, the load
// tool's p99 rose by about 2 ms.
const indexStep = 250

// defaultIndexEvery is how often new events are indexed by message. A tick runs steps back to back
// until the index has caught up, so the interval bounds the unindexed end of the events table that
// reads by message scan, not the pages written: those follow the step, which writes a leaf (and its
// splits) for each message it names, about 200 pages for 250 events over 100 messages.
const defaultIndexEvery = 500 * time.Millisecond

// unindexed is true of an event not indexed yet: the end of the events table that reads by message
// scan. Used unqualified, seq is the innermost table's.
const unindexed = "seq > (SELECT upto FROM event_index_state)"

// eventsOf is an SQL set of the seqs of the events of the message msg names (a column such as
// "a.message_id", or a numbered parameter; it appears twice): those in event_index, and the newest,
// not indexed yet, found by scanning the events table from the end of the index. where, if not
// empty, narrows both by columns the two tables share (at, id), so the index range is narrowed too.
func eventsOf(msg, where string) string {
	if where != "" {
		where = " AND " + where
	}
	return `(SELECT seq FROM event_index WHERE message_id = ` + msg + where + ` UNION ALL
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
	return `event_index e WHERE e.message_id = ` + msg + ` AND ` + where
}

// allIndexed is true when no event waits to be indexed. Evaluated once per statement, it lets a
// subquery run for every row of an outer query skip the other arm of messageEvents, which costs
// as much again even with nothing to scan.
const allIndexed = `(SELECT upto FROM event_index_state) >= (SELECT coalesce(max(seq), 0) FROM events)`

// indexEvents indexes up to indexStep events not indexed yet, in one transaction, and reports how
// many it indexed.
func (db *DB) indexEvents(ctx context.Context) (int, error) {
	// Asked of a reader first, so that an idle store takes no write lock every tick.
	var caughtUp bool
	if err := db.read.QueryRowContext(ctx, "SELECT "+allIndexed).Scan(&caughtUp); err != nil {
		return 0, fmt.Errorf("sqlite: index events: %w", err)
	}
	if caughtUp {
		return 0, nil
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("sqlite: index events: %w", err)
	}
	defer tx.Rollback()
	var from, to int64
	if err := tx.QueryRowContext(ctx, `SELECT upto, coalesce((SELECT max(seq) FROM
		(SELECT seq FROM events WHERE seq > upto ORDER BY seq LIMIT ?)), upto) FROM event_index_state`,
		indexStep).Scan(&from, &to); err != nil {
		return 0, fmt.Errorf("sqlite: index events: %w", err)
	}
	if to == from {
		return 0, nil
	}
	// In message order, so that each page of the index is found and written once.
	if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO event_index (`+indexColumns+`)
		SELECT `+indexColumns+` FROM events WHERE seq > ? AND seq <= ? ORDER BY message_id, at, id`,
		from, to); err != nil {
		return 0, fmt.Errorf("sqlite: index events: %w", err)
	}
	if _, err := tx.ExecContext(ctx, "UPDATE event_index_state SET upto = ?", to); err != nil {
		return 0, fmt.Errorf("sqlite: index events: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("sqlite: index events: commit: %w", err)
	}
	return int(to - from), nil
}

// indexStepsUntilCaughtUp runs indexing steps while they come back full, so that a backlog drains
// at the writer's pace, one step at a time; an error waits for the next tick, and reads scan the
// unindexed end meanwhile.
func (db *DB) indexStepsUntilCaughtUp(ctx context.Context) {
	for {
		if n, err := db.indexEvents(ctx); err != nil || n < indexStep {
			return
		}
		select {
		case <-db.stop:
			return
		default:
		}
	}
}
