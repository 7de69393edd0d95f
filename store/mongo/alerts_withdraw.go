package mongo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mdb "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/engage-email/engage/alerts"
	"github.com/engage-email/engage/followed"
)

// recentEventAlerts selects the alerts about events (opens, clicks, attachment opens) at or after since.
func recentEventAlerts(since int64) bson.D {
	return bson.D{{Key: "kind", Value: bson.D{{Key: "$in", Value: bson.A{string(alerts.FirstOpen), string(alerts.LinkClicked),
		string(alerts.AttachmentOpened)}}}}, {Key: "at", Value: bson.D{{Key: "$gte", Value: since}}}}
}

// opensAt selects a recipient's opens of a message at one millisecond.
func opensAt(messageID string, recipient int, at int64) bson.D {
	return bson.D{{Key: "message_id", Value: messageID}, {Key: "recipient", Value: recipient},
		{Key: "kind", Value: string(followed.Opened)}, {Key: "at", Value: at}}
}

// RelabelledAlerts implements alerts.Store: the recent alerts about events, oldest first, then a look
// at the events each one reported (index message_id, at for opens; id for clicks).
func (db *DB) RelabelledAlerts(ctx context.Context, since time.Time, limit int) ([]alerts.Withdrawal, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("mongo: relabelled alerts: %w: limit %d", followed.ErrBadInput, limit)
	}
	docs, err := all[alertDoc](ctx, db.c("alerts"), recentEventAlerts(since.UnixMilli()),
		options.Find().SetSort(bson.D{{Key: "at", Value: 1}, {Key: "seq", Value: 1}}))
	if err != nil {
		return nil, fail("relabelled alerts", err)
	}
	out := []alerts.Withdrawal{}
	for _, x := range docs {
		if len(out) == limit {
			break
		}
		reason, err := db.machineReason(ctx, x)
		if err != nil {
			return nil, fail("relabelled alerts", err)
		}
		if reason != "" {
			out = append(out, alerts.Withdrawal{Alert: x.alert(), Reason: reason})
		}
	}
	return out, nil
}

// machineReason is why the event alert x reported is a machine's, "" while it is a person's, or when x
// is withdrawn already or keyed in a way this version does not build.
func (db *DB) machineReason(ctx context.Context, x alertDoc) (string, error) {
	if x.Kind != string(alerts.FirstOpen) {
		id, ok := strings.CutPrefix(x.Key, "event:")
		if !ok {
			return "", nil
		}
		n, err := db.c("alerts").CountDocuments(ctx, bson.D{{Key: "key", Value: alerts.WithdrawnKey(x.ID)}})
		if err != nil || n > 0 {
			return "", err
		}
		var e eventDoc
		err = db.c("events").FindOne(ctx, bson.D{{Key: "id", Value: id}}).Decode(&e)
		if errors.Is(err, mdb.ErrNoDocuments) || (err == nil && e.Machine == 0) {
			return "", nil
		}
		return e.Reason, err
	}
	tail, ok := strings.CutPrefix(x.Key, "first_open:"+x.MessageID+":")
	rcpt, err := strconv.Atoi(tail)
	if !ok || err != nil {
		return "", nil // withdrawn already (its key moved)
	}
	opens, err := all[eventDoc](ctx, db.c("events"), opensAt(x.MessageID, rcpt, x.At), options.Find().SetSort(bson.D{{Key: "id", Value: 1}}))
	if err != nil {
		return "", err
	}
	reason := ""
	for _, e := range opens {
		if e.Machine == 0 {
			return "", nil
		}
		if reason == "" {
			reason = e.Reason
		}
	}
	return reason, nil
}

// WithdrawAlerts implements alerts.Store: a FIRST_OPEN alert's key moves to "first_open_withdrawn:<id>",
// freeing FirstOpenKey for the recipient's real first open; the withdrawal's own key makes a second
// withdrawal of any alert store nothing.
func (db *DB) WithdrawAlerts(ctx context.Context, ws []alerts.Withdrawal) ([]alerts.Alert, error) {
	var stored []alerts.Alert
	for _, w := range ws {
		var as []alerts.Alert
		err := db.tx(ctx, "withdraw alert", func(ctx context.Context) error {
			as = nil
			if w.Alert.Kind == alerts.FirstOpen {
				if _, err := db.c("alerts").UpdateOne(ctx, bson.D{{Key: "id", Value: w.Alert.ID}, {Key: "key", Value: w.Alert.Key}},
					bson.D{{Key: "$set", Value: bson.D{{Key: "key", Value: "first_open_withdrawn:" + w.Alert.ID}}}}); err != nil {
					return fmt.Errorf("move key of %s: %w", w.Alert.ID, err)
				}
			}
			var err error
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
