package mongo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mdb "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/engage-email/engage/alerts"
)

var _ alerts.Waker = (*DB)(nil)

const (
	watchRetryMin = 100 * time.Millisecond
	watchRetryMax = 5 * time.Second
)

// WatchAlerts implements alerts.Waker with a change stream on the alerts collection: each insert, by
// any instance, wakes the caller's tail. After a transient error (no primary, network) it waits and
// resumes from the last resume token; when that token can no longer be resumed from it opens a fresh
// stream, since the tail, not the stream, decides what is delivered. Any other error (change streams
// on a standalone server) is returned; nil once ctx is done.
func (db *DB) WatchAlerts(ctx context.Context, wake func()) error {
	var token bson.Raw
	wait := watchRetryMin
	for {
		opened, err := db.watchAlertsOnce(ctx, &token, wake)
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case err != nil && resumable(err):
		case err == nil || token != nil:
			// The stream was invalidated, or its position is gone (the oplog rolled over): start
			// afresh, the tail covers the gap.
			token = nil
		default:
			return fmt.Errorf("mongo: watch alerts: %w", err)
		}
		if opened {
			wait = watchRetryMin
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		wait = min(2*wait, watchRetryMax)
	}
}

// watchAlertsOnce opens one change stream (after *token when set), wakes once when it is open so
// alerts stored before it are read at once, then once per insert, keeping *token current; it reports
// whether the stream opened and the error that ended it.
func (db *DB) watchAlertsOnce(ctx context.Context, token *bson.Raw, wake func()) (bool, error) {
	opts := options.ChangeStream()
	if *token != nil {
		opts.SetResumeAfter(*token)
	}
	cs, err := db.c("alerts").Watch(ctx, alertInsertsPipeline(), opts)
	if err != nil {
		return false, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), watchRetryMax)
		defer cancel()
		cs.Close(cctx) // the server drops an abandoned cursor itself; this only spares it the wait
	}()
	wake()
	for cs.Next(ctx) {
		*token = cs.ResumeToken()
		wake()
	}
	if rt := cs.ResumeToken(); rt != nil {
		*token = rt
	}
	if err := cs.Err(); err != nil {
		return true, err
	}
	return true, ctx.Err()
}

// alertInsertsPipeline keeps only inserts (alerts are appended, never changed in a way the tail
// cares about) and drops the document itself: a wake needs no payload, the tail reads the store.
func alertInsertsPipeline() bson.A {
	return bson.A{
		bson.D{{Key: "$match", Value: bson.D{{Key: "operationType", Value: "insert"}}}},
		bson.D{{Key: "$project", Value: bson.D{{Key: "fullDocument", Value: 0}}}},
	}
}

// resumable reports whether a change stream error is worth retrying from where the stream stood.
func resumable(err error) bool {
	var le mdb.LabeledError
	return unavailable(err) || (errors.As(err, &le) && le.HasErrorLabel("ResumableChangeStreamError"))
}
