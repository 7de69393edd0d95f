package mongo

import (
	"context"
	"fmt"
	"sort"

	"go.mongodb.org/mongo-driver/v2/bson"
	mdb "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/engage-email/engage/store"
)

var _ store.Dumper = (*DB)(nil)

// sequences are the collections whose seq column a counter hands out; an import moves the counter
// past what it brought.
var sequences = map[string]bool{"events": true, "alerts": true, "follow_preferences": true, "audit_log": true}

// Tables implements store.Dumper: the collections mirroring the embedded store's tables, in import order.
func (db *DB) Tables(context.Context) ([]string, error) {
	var out []string
	for _, c := range collections() {
		out = append(out, c.name)
	}
	return out, nil
}

// keyOf is the unique key rows of a collection are replaced by on import: its first unique index.
func keyOf(table string) ([]string, error) {
	for _, c := range collections() {
		if c.name != table {
			continue
		}
		for _, ix := range c.indexes {
			if ix.unique {
				var ks []string
				for _, k := range ix.keys {
					ks = append(ks, k.Key)
				}
				return ks, nil
			}
		}
	}
	return nil, fmt.Errorf("mongo: no table %q", table)
}

// Export implements store.Dumper: numbers come out as int64 or float64, as the embedded store gives
// them, and write-only guard fields stay behind, so the rows import into the embedded store's tables.
func (db *DB) Export(ctx context.Context, table string, fn func(store.Row) error) error {
	if _, err := keyOf(table); err != nil {
		return err
	}
	cur, err := db.c(table).Find(ctx, bson.D{}, options.Find().SetProjection(exportProjection(table)))
	if err != nil {
		return fail("export "+table, err)
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		var doc bson.M
		if err := cur.Decode(&doc); err != nil {
			return fmt.Errorf("mongo: export %s: %w", table, err)
		}
		if err := fn(rowOf(doc)); err != nil {
			return err
		}
	}
	if err := cur.Err(); err != nil {
		return fail("export "+table, err)
	}
	return nil
}

func rowOf(doc bson.M) store.Row {
	r := make(store.Row, len(doc))
	for k, v := range doc {
		switch x := v.(type) {
		case int32:
			r[k] = int64(x)
		case bson.Binary:
			r[k] = x.Data
		default:
			r[k] = x
		}
	}
	return r
}

// docOf is a row as a document, its fields in name order so that copies compare alike.
func docOf(r store.Row) bson.D {
	keys := make([]string, 0, len(r))
	for k := range r {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make(bson.D, 0, len(keys))
	for _, k := range keys {
		out = append(out, bson.E{Key: k, Value: r[k]})
	}
	return out
}

// Import implements store.Dumper with one bulk write of upserts by the collection's unique key, then
// moves the collection's sequence counter past the largest seq imported.
func (db *DB) Import(ctx context.Context, table string, rows []store.Row) error {
	key, err := keyOf(table)
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		return nil
	}
	models := make([]mdb.WriteModel, 0, len(rows))
	var top int64
	for i, r := range rows {
		f := bson.D{}
		for _, k := range key {
			v, ok := r[k]
			if !ok {
				return fmt.Errorf("mongo: import %s: row %d has no %s", table, i, k)
			}
			f = append(f, bson.E{Key: k, Value: v})
		}
		if s, ok := r["seq"].(int64); ok {
			top = max(top, s)
		}
		models = append(models, mdb.NewReplaceOneModel().SetFilter(f).SetReplacement(docOf(r)).SetUpsert(true))
	}
	if _, err := db.c(table).BulkWrite(ctx, models); err != nil {
		return fail("import "+table, err)
	}
	if sequences[table] {
		if _, err := db.c(countersColl).UpdateOne(ctx, idFilter(table), bson.D{{Key: "$max", Value: bson.D{{Key: "seq", Value: top}}}},
			options.UpdateOne().SetUpsert(true)); err != nil {
			return fail("import "+table+": sequence", err)
		}
	}
	return nil
}

// Count implements store.Dumper.
func (db *DB) Count(ctx context.Context, table string) (int64, error) {
	if _, err := keyOf(table); err != nil {
		return 0, err
	}
	n, err := db.c(table).CountDocuments(ctx, bson.D{})
	if err != nil {
		return 0, fail("count "+table, err)
	}
	return n, nil
}
