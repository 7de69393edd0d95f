package sqlite

import "context"

// IndexEvents indexes every event not indexed yet, as the indexer's rounds would, for tests that
// read through event_index alone.
func IndexEvents(ctx context.Context, db *DB) error {
	for {
		n, err := db.indexEvents(ctx)
		if err != nil || n < indexRound {
			return err
		}
	}
}

// IndexEntriesOnly writes the entries of the next round's events (every event not indexed yet, when
// they are fewer than a round) but leaves the indexed end where it is, as a round does until its last
// step, for tests that read while entries lie above the end.
func IndexEntriesOnly(ctx context.Context, db *DB) error {
	from, _, seqs, err := db.nextRound(ctx)
	if err != nil || len(seqs) == 0 {
		return err
	}
	return db.indexStep(ctx, seqs, from, -1)
}

// UnindexedEvents counts the events reads by message find by scanning the end of the events table.
func UnindexedEvents(ctx context.Context, db *DB) (int, error) {
	var n int
	err := db.read.QueryRowContext(ctx, "SELECT count(*) FROM events WHERE "+unindexed).Scan(&n)
	return n, err
}

// IndexEntries counts the entries of event_index.
func IndexEntries(ctx context.Context, db *DB) (int, error) {
	var n int
	err := db.read.QueryRowContext(ctx, "SELECT count(*) FROM event_index").Scan(&n)
	return n, err
}

// IndexedMachine is the machine column of every entry of event_index, by event id.
func IndexedMachine(ctx context.Context, db *DB) (map[string]bool, error) {
	rows, err := db.read.QueryContext(ctx, "SELECT id, machine FROM event_index")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		var m bool
		if err := rows.Scan(&id, &m); err != nil {
			return nil, err
		}
		out[id] = m
	}
	return out, rows.Err()
}

// Checkpoint runs one tick of the checkpointer.
func Checkpoint(ctx context.Context, db *DB) error { return db.checkpoint(ctx) }

// Exec runs a statement on the write connection, for tests that break the store on purpose.
func Exec(ctx context.Context, db *DB, query string) error {
	_, err := db.write.ExecContext(ctx, query)
	return err
}
