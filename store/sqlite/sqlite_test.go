package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/store/sqlite"
	"github.com/engage-email/engage/store/storetest"
)

// TestConformance runs the suite three times: with the indexer idle, so that every read by message
// finds its events by scanning the end of the events table; with each batch indexed as soon as it is
// stored, so that every such read goes through event_index; and with each batch's entries written but
// the indexed end left below them, as in the middle of a round, so that every such read finds an event
// both ways and must count it once.
func TestConformance(t *testing.T) {
	t.Run("unindexed", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) storetest.Stores {
			db := openIdle(t)
			return stores(db, db)
		})
	})
	t.Run("indexed", func(t *testing.T) {
		sqlOnly(t)
		storetest.Run(t, func(t *testing.T) storetest.Stores {
			db := openIdle(t)
			return stores(db, afterEachBatch{db, sqlite.IndexEvents})
		})
	})
	t.Run("mid-round", func(t *testing.T) {
		sqlOnly(t)
		storetest.Run(t, func(t *testing.T) storetest.Stores {
			db := openIdle(t)
			return stores(db, afterEachBatch{db, sqlite.IndexEntriesOnly})
		})
	})
}

// sqlOnly skips, under -race, a run of the suite that differs from the first only in which SQL finds
// a message's events: the race detector learns nothing new from it, and slows each run to over two
// minutes (modernc's SQLite is Go, all of it instrumented).
func sqlOnly(t *testing.T) {
	if raceDetector {
		t.Skip("the same concurrency as the unindexed run; its SQL is checked without -race")
	}
}

func stores(db *sqlite.DB, f followed.Store) storetest.Stores {
	return storetest.Stores{Followed: f, Alerts: db, Consent: db, FollowedEraser: db.FollowedEraser(), Recommend: db,
		Delivery: db, Outbox: db, DeliveryEraser: db.DeliveryEraser(), Attachments: db, Inbound: db, Feed: db}
}

// openIdle opens a store whose indexer does not run during a test.
func openIdle(tb testing.TB) *sqlite.DB {
	db, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "engage.db"), sqlite.Options{IndexEvery: time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// afterEachBatch is the embedded store with then run on it after each batch of events is stored.
type afterEachBatch struct {
	*sqlite.DB
	then func(context.Context, *sqlite.DB) error
}

func (s afterEachBatch) RecordEvents(ctx context.Context, evs []followed.Event) ([]followed.FirstOpen, error) {
	firsts, err := s.DB.RecordEvents(ctx, evs)
	if err != nil {
		return nil, err
	}
	return firsts, s.then(ctx, s.DB)
}

func TestReopenKeepsDataAndMigratesOnce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "engage.db")
	for i := range 3 {
		db, err := sqlite.Open(ctx, path, sqlite.Options{})
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		if err := db.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
	if _, err := sqlite.Open(ctx, path, sqlite.Options{Synchronous: "sometimes"}); err == nil {
		t.Fatal("a bad synchronous setting was accepted")
	}
	if _, err := sqlite.Open(ctx, path, sqlite.Options{IndexEvery: -time.Second}); err == nil {
		t.Fatal("a negative index interval was accepted")
	}
	if _, err := sqlite.Open(ctx, path, sqlite.Options{RestartFrames: -1}); err == nil {
		t.Fatal("a negative restart length was accepted")
	}
}
