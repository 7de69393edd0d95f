package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"strings"

	"github.com/engage-email/engage/store"
)

var _ store.Dumper = (*DB)(nil)

// counterColumns are the columns of the counters table other than its key. The dump folds them into
// the messages rows, as the other backend keeps them: how this store lays a message out is its own
// business, and a dump of it reads like any other.
var counterColumns = []string{"opens", "unique_opens", "first_opened_at", "last_opened_at", "clicks",
	"unique_clicks", "attachment_opens", "replies", "machine_opens", "machine_clicks"}

// Tables implements store.Dumper: every data table in the order the migrations created them, so
// messages come before the rows that name them; counters travel inside messages, the event index
// is derived from events (on import as by the indexer), and the audience epoch is this store's own.
func (db *DB) Tables(ctx context.Context) ([]string, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table'
		AND name NOT LIKE 'sqlite_%' AND name NOT IN ('schema_migrations', 'counters', 'event_index', 'event_index_state', 'audience_epoch')
		ORDER BY rowid`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: tables: %w", err)
	}
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("sqlite: tables: %w", err)
		}
		out = append(out, n)
	}
	return out, closeRows(rows)
}

// checkTable refuses a name that is not one of the store's tables, since it is spliced into SQL.
func (db *DB) checkTable(ctx context.Context, table string) error {
	ts, err := db.Tables(ctx)
	if err != nil {
		return err
	}
	for _, t := range ts {
		if t == table {
			return nil
		}
	}
	return fmt.Errorf("sqlite: no table %q", table)
}

// Export implements store.Dumper.
func (db *DB) Export(ctx context.Context, table string, fn func(store.Row) error) error {
	if err := db.checkTable(ctx, table); err != nil {
		return err
	}
	query := `SELECT * FROM "` + table + `"`
	if table == "messages" {
		query = "SELECT messages.*, " + strings.Join(counterColumns, ", ") + " FROM " + withCounters
	}
	rows, err := db.read.QueryContext(ctx, query)
	if err != nil {
		return fmt.Errorf("sqlite: export %s: %w", table, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return fmt.Errorf("sqlite: export %s: %w", table, err)
	}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("sqlite: export %s: %w", table, err)
		}
		r := make(store.Row, len(cols))
		for i, c := range cols {
			r[c] = vals[i]
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: export %s: %w", table, err)
	}
	return nil
}

// Import implements store.Dumper: one transaction per call, rows with an existing key replaced.
func (db *DB) Import(ctx context.Context, table string, rows []store.Row) error {
	if len(rows) == 0 {
		return nil
	}
	if err := db.checkTable(ctx, table); err != nil {
		return err
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: import %s: %w", table, err)
	}
	defer tx.Rollback()
	for i, r := range rows {
		var counters store.Row
		if table == "messages" {
			counters = store.Row{"message_id": r["id"]}
			r = maps.Clone(r)
			for _, c := range counterColumns {
				if v, ok := r[c]; ok {
					counters[c] = v
					delete(r, c)
				}
			}
		}
		if err := insertRow(ctx, tx, table, r); err != nil {
			return fmt.Errorf("sqlite: import %s: row %d: %w", table, i, err)
		}
		if counters != nil {
			if err := insertRow(ctx, tx, "counters", counters); err != nil {
				return fmt.Errorf("sqlite: import %s: row %d: counters: %w", table, i, err)
			}
		}
		// Indexed here whatever its seq (the indexer takes only events above what it has indexed), and
		// replaced, so that an event copied again brings its entry up to date.
		if table == "events" {
			if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO event_index (`+indexColumns+`)
				SELECT `+indexColumns+` FROM events WHERE id = ?`, r["id"]); err != nil {
				return fmt.Errorf("sqlite: import %s: row %d: index: %w", table, i, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: import %s: commit: %w", table, err)
	}
	return nil
}

// insertRow inserts r into table, replacing a row with the same key.
func insertRow(ctx context.Context, tx *sql.Tx, table string, r store.Row) error {
	cols := make([]string, 0, len(r))
	args := make([]any, 0, len(r))
	for c, v := range r {
		if strings.ContainsAny(c, "\"`[]; ") {
			return fmt.Errorf("bad column name %q", c)
		}
		cols = append(cols, `"`+c+`"`)
		args = append(args, v)
	}
	_, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO "`+table+`" (`+strings.Join(cols, ",")+`) VALUES (`+
		strings.TrimSuffix(strings.Repeat("?,", len(cols)), ",")+`)`, args...)
	return err
}

// Count implements store.Dumper.
func (db *DB) Count(ctx context.Context, table string) (int64, error) {
	if err := db.checkTable(ctx, table); err != nil {
		return 0, err
	}
	var n int64
	if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM "`+table+`"`).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: count %s: %w", table, err)
	}
	return n, nil
}
