package mongo

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/engage-email/engage/alerts"
	"github.com/engage-email/engage/followed"
)

// recentFirstOpenAlerts selects the first-open alerts at or after since still under their FirstOpenKey.
func recentFirstOpenAlerts(since int64) bson.D {
	return bson.D{{Key: "kind", Value: string(alerts.FirstOpen)}, {Key: "at", Value: bson.D{{Key: "$gte", Value: since}}},
		{Key: "key", Value: bson.D{{Key: "$regex", Value: "^first_open:"}}}}
}

// opensAt selects a recipient's opens of a message at one millisecond.
func opensAt(messageID string, recipient int, at int64) bson.D {
	return bson.D{{Key: "message_id", Value: messageID}, {Key: "recipient", Value: recipient},
		{Key: "kind", Value: string(followed.Opened)}, {Key: "at", Value: at}}
}

// RelabelledFirstOpens implements alerts.Store: the recent first-open alerts, oldest first, then a
// look at the opens each one reported (index message_id, at).
func (db *DB) RelabelledFirstOpens(ctx context.Context, since time.Time, limit int) ([]alerts.Withdrawal, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("mongo: relabelled first opens: %w: limit %d", followed.ErrBadInput, limit)
	}
	docs, err := all[alertDoc](ctx, db.c("alerts"), recentFirstOpenAlerts(since.UnixMilli()),
		options.Find().SetSort(bson.D{{Key: "at", Value: 1}, {Key: "seq", Value: 1}}))
	if err != nil {
		return nil, fail("relabelled first opens", err)
	}
	out := []alerts.Withdrawal{}
	for _, x := range docs {
		if len(out) == limit {
			break
		}
		tail, ok := strings.CutPrefix(x.Key, "first_open:"+x.MessageID+":")
		rcpt, err := strconv.Atoi(tail)
		if !ok || err != nil {
			continue // not a first-open key this version builds
		}
		opens, err := all[eventDoc](ctx, db.c("events"), opensAt(x.MessageID, rcpt, x.At),
			options.Find().SetSort(bson.D{{Key: "id", Value: 1}}))
		if err != nil {
			return nil, fail("relabelled first opens", err)
		}
		reason, person := "", false
		for _, e := range opens {
			if e.Machine == 0 {
				person = true
			} else if reason == "" {
				reason = e.Reason
			}
		}
		if !person && reason != "" {
			out = append(out, alerts.Withdrawal{Alert: x.alert(), Reason: reason})
		}
	}
	return out, nil
}

// WithdrawFirstOpens implements alerts.Store: moving the withdrawn alert's key to
// "first_open_withdrawn:<id>" frees FirstOpenKey for the recipient's real first open, and a second
// withdrawal of it finds nothing to move.
func (db *DB) WithdrawFirstOpens(ctx context.Context, ws []alerts.Withdrawal) ([]alerts.Alert, error) {
	var stored []alerts.Alert
	for _, w := range ws {
		var as []alerts.Alert
		err := db.tx(ctx, "withdraw alert", func(ctx context.Context) error {
			as = nil
			res, err := db.c("alerts").UpdateOne(ctx, bson.D{{Key: "id", Value: w.Alert.ID}, {Key: "key", Value: w.Alert.Key}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "key", Value: "first_open_withdrawn:" + w.Alert.ID}}}})
			if err != nil {
				return fmt.Errorf("move key of %s: %w", w.Alert.ID, err)
			}
			if res.MatchedCount == 0 {
				return nil // withdrawn already, by this instance or another
			}
			as, err = db.insertAlerts(ctx, []alerts.Alert{w.By})
			return err
		})
		if err != nil {
			return stored, err
		}
		stored = append(stored, as...)
	}
	return stored, nil
}
