package mongo_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/engage-email/engage/store"
	"github.com/engage-email/engage/store/mongo"
	"github.com/engage-email/engage/store/sqlite"
	"github.com/engage-email/engage/store/storetest"
)

// TestConformance runs the store contract against a MongoDB replica set named by
// ENGAGE_TEST_MONGODB_URI, each test on a fresh database that is dropped afterwards.
func TestConformance(t *testing.T) {
	uri := os.Getenv("ENGAGE_TEST_MONGODB_URI")
	if uri == "" {
		t.Skip("ENGAGE_TEST_MONGODB_URI not set: MongoDB backend not exercised (see README, Scaling out)")
	}
	storetest.Run(t, func(t *testing.T) storetest.Stores {
		db := mongo.OpenTemp(t, uri)
		return storetest.Stores{Followed: db, Alerts: db, Consent: db, FollowedEraser: db.FollowedEraser(), Recommend: db,
			Delivery: db, Outbox: db, DeliveryEraser: db.DeliveryEraser(), Attachments: db, Inbound: db, Feed: db}
	})
}

// TestOpenUnreachable: a server that does not answer stops start-up within the connect timeout with
// an error that says so and is marked unavailable; a malformed URI is refused before any dialling.
func TestOpenUnreachable(t *testing.T) {
	for _, tc := range []struct {
		name, uri, want string
		unavailable     bool
	}{
		{"nothing listening", "mongodb://127.0.0.1:1/engage?connectTimeoutMS=200", "no primary answered", true},
		{"not a uri", "postgres://localhost/engage", "not a MongoDB connection string", false},
		{"bad port", "mongodb://localhost:notaport/engage", "not a MongoDB connection string", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mongo.Open(context.Background(), tc.uri, mongo.Options{ConnectTimeout: 500 * time.Millisecond})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			}
			if got := errors.Is(err, store.ErrUnavailable); got != tc.unavailable {
				t.Errorf("marked unavailable = %v, want %v", got, tc.unavailable)
			}
		})
	}
}

// TestCollectionsMirrorEmbeddedTables keeps the two backends' tables in step, which the migration
// command relies on: a table added to the embedded store needs its collection here.
func TestCollectionsMirrorEmbeddedTables(t *testing.T) {
	ctx := context.Background()
	embedded, err := sqlite.OpenTemp(t).Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var db *mongo.DB // Tables needs no connection
	mirrored, err := db.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, c := range mirrored {
		have[c] = true
	}
	for _, tb := range embedded {
		t.Run(tb, func(t *testing.T) {
			if !have[tb] {
				t.Errorf("embedded table %s has no MongoDB collection", tb)
			}
			delete(have, tb)
		})
	}
	for c := range have {
		t.Errorf("collection %s has no embedded table to copy from", c)
	}
}
