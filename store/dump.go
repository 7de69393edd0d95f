package store

import "context"

// Row is one record in the backend-neutral copy format: column name to int64, float64, string,
// []byte or nil, as in the embedded store's tables, which every backend mirrors.
type Row map[string]any

// Dumper is a backend seen by the migration command: it lists its tables, streams a table's rows
// out, takes rows in, and counts, so a store is copied table by table and verified.
type Dumper interface {
	// Tables lists the tables (collections) that hold data, in an order that is safe to import.
	Tables(ctx context.Context) ([]string, error)
	// Export calls fn with each row of table.
	Export(ctx context.Context, table string, fn func(Row) error) error
	// Import stores rows in table, replacing rows with the same key, so a copy cut short can be rerun.
	Import(ctx context.Context, table string, rows []Row) error
	// Count is how many rows table holds.
	Count(ctx context.Context, table string) (int64, error)
}
