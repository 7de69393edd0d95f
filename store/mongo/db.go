// Package mongo is Engage's scale-out store: a MongoDB replica set shared by several stateless
// instances. Its collections mirror the embedded store's tables column for column (plus guard fields
// written only to make transactions conflict, which exports leave out), so both backends answer alike
// and a store moves between them by copying rows; every multi-document change is a transaction.
package mongo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"

	mdb "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readconcern"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/engage-email/engage/store"
)

// DefaultDatabase is used when the URI names no database.
const DefaultDatabase = "engage"

// Options tune how the store connects.
type Options struct {
	// Database overrides the database named in the URI (tests use a fresh one each).
	Database string
	// ConnectTimeout bounds the first ping, so a wrong or unreachable URI stops start-up promptly;
	// default the URI's serverSelectionTimeoutMS, else 10s.
	ConnectTimeout time.Duration
}

// DB is an open store on one database of a replica set.
type DB struct {
	client *mdb.Client
	db     *mdb.Database
}

// Open connects with majority writes, majority reads and retryable writes, checks the server answers
// within opts.ConnectTimeout, and creates the collections and indexes that are missing.
func Open(ctx context.Context, uri string, opts Options) (*DB, error) {
	cs, err := connstring.ParseAndValidate(uri)
	if err != nil {
		return nil, fmt.Errorf("mongo: ENGAGE_MONGODB_URI is not a MongoDB connection string: %w", err)
	}
	name := opts.Database
	if name == "" {
		name = cs.Database
	}
	if name == "" {
		name = DefaultDatabase
	}
	if opts.ConnectTimeout <= 0 && cs.ServerSelectionTimeoutSet {
		opts.ConnectTimeout = cs.ServerSelectionTimeout // the URI's serverSelectionTimeoutMS
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 10 * time.Second
	}
	co := options.Client().ApplyURI(uri).
		SetWriteConcern(writeconcern.Majority()).
		SetReadConcern(readconcern.Majority()).
		SetReadPreference(readpref.Primary()).
		SetRetryWrites(true).
		SetRetryReads(true).
		SetServerSelectionTimeout(opts.ConnectTimeout)
	client, err := mdb.Connect(co)
	if err != nil {
		return nil, fmt.Errorf("mongo: connect: %w", err)
	}
	db := &DB{client: client, db: client.Database(name)}
	pctx, cancel := context.WithTimeout(ctx, opts.ConnectTimeout)
	defer cancel()
	if err := client.Ping(pctx, readpref.Primary()); err != nil {
		db.Close()
		return nil, fmt.Errorf("mongo: no primary answered within %s: %w: %w", opts.ConnectTimeout, store.ErrUnavailable, err)
	}
	if err := db.prepare(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// OpenTemp opens a fresh database on the server at uri for one test and drops it when the test ends.
func OpenTemp(t testing.TB, uri string) *DB {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	db, err := Open(context.Background(), uri, Options{Database: "engage_test_" + hex.EncodeToString(b[:])})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := db.db.Drop(ctx); err != nil {
			t.Errorf("drop test database %s: %v", db.db.Name(), err)
		}
		db.Close()
	})
	return db
}

// Close disconnects.
func (db *DB) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return db.client.Disconnect(ctx)
}

// Ping checks that a primary answers, for /readyz.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.client.Ping(ctx, readpref.Primary()); err != nil {
		return fail("ping", err)
	}
	return nil
}

// Database is the database's name.
func (db *DB) Database() string { return db.db.Name() }

func (db *DB) c(name string) *mdb.Collection { return db.db.Collection(name) }

// tx runs fn in a transaction (snapshot reads, majority commit), retried by the driver on transient
// conflicts: two transactions writing one document never both commit, which is what makes sequence
// counters, first opens and leases exact.
func (db *DB) tx(ctx context.Context, what string, fn func(ctx context.Context) error) error {
	sess, err := db.client.StartSession()
	if err != nil {
		return fail(what, err)
	}
	defer sess.EndSession(context.WithoutCancel(ctx))
	_, err = sess.WithTransaction(ctx, func(ctx context.Context) (any, error) { return nil, fn(ctx) },
		options.Transaction().SetReadConcern(readconcern.Snapshot()).SetWriteConcern(writeconcern.Majority()).
			SetReadPreference(readpref.Primary()))
	if err != nil {
		return fail(what, err)
	}
	return nil
}

// nextSeq reserves n numbers of the named sequence and returns the last; inside a transaction the
// counter document serialises writers, so numbers become visible in the order they were given.
func (db *DB) nextSeq(ctx context.Context, name string, n int) (int64, error) {
	var doc struct {
		Seq int64 `bson:"seq"`
	}
	err := db.c(countersColl).FindOneAndUpdate(ctx, idFilter(name), incSeq(n),
		options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.After)).Decode(&doc)
	if err != nil {
		return 0, fmt.Errorf("sequence %s: %w", name, err)
	}
	return doc.Seq, nil
}

// fail wraps err saying what failed, and marks it store.ErrUnavailable when the server could not be
// reached, so that the API answers UNAVAILABLE rather than INTERNAL.
func fail(what string, err error) error {
	if unavailable(err) && !errors.Is(err, store.ErrUnavailable) {
		return fmt.Errorf("mongo: %s: %w: %w", what, store.ErrUnavailable, err)
	}
	return fmt.Errorf("mongo: %s: %w", what, err)
}

func unavailable(err error) bool {
	var sse topology.ServerSelectionError
	return mdb.IsNetworkError(err) || errors.As(err, &sse) || errors.Is(err, mdb.ErrClientDisconnected)
}

// b2i stores a boolean as the embedded store does, 0 or 1, so rows copy between backends unchanged.
func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// millis is a time as Unix milliseconds, or nil (null) for the zero time.
func millis(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

func fromMillis(v *int64) time.Time {
	if v == nil {
		return time.Time{}
	}
	return time.UnixMilli(*v).UTC()
}

func ms(v int64) time.Time { return time.UnixMilli(v).UTC() }

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// all runs a find and decodes every document into a T.
func all[T any](ctx context.Context, coll *mdb.Collection, filter any, opts ...options.Lister[options.FindOptions]) ([]T, error) {
	cur, err := coll.Find(ctx, filter, opts...)
	if err != nil {
		return nil, err
	}
	out := []T{}
	if err := cur.All(ctx, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// one decodes the document filter selects into a T; notFound (wrapped, naming what) when there is
// none, a failure marked by fail otherwise.
func one[T any](ctx context.Context, coll *mdb.Collection, filter any, what string, notFound error) (T, error) {
	var x T
	err := coll.FindOne(ctx, filter).Decode(&x)
	if errors.Is(err, mdb.ErrNoDocuments) {
		return x, fmt.Errorf("mongo: %s: %w", what, notFound)
	}
	if err != nil {
		return x, fail(what, err)
	}
	return x, nil
}

// aggregate runs a pipeline and decodes every result into a T.
func aggregate[T any](ctx context.Context, coll *mdb.Collection, pipeline any) ([]T, error) {
	cur, err := coll.Aggregate(ctx, pipeline)
	if err != nil {
		return nil, err
	}
	out := []T{}
	if err := cur.All(ctx, &out); err != nil {
		return nil, err
	}
	return out, nil
}
