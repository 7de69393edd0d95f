package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/engage-email/engage/store/sqlite"
	"github.com/engage-email/engage/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Stores {
		db := sqlite.OpenTemp(t)
		return storetest.Stores{Followed: db, Alerts: db, Consent: db, FollowedEraser: db.FollowedEraser(), Recommend: db,
			Delivery: db, Outbox: db, DeliveryEraser: db.DeliveryEraser(), Attachments: db, Inbound: db, Feed: db}
	})
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
}
