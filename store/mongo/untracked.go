package mongo

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/engage-email/engage/consent"
	"github.com/engage-email/engage/followed"
)

// untrackedDoc stops recording a recipient's events of a message (all of them for a shared render,
// recipient -1): the recipient withdrew consent after it was sent.
type untrackedDoc struct {
	MessageID string `bson:"message_id"`
	Recipient int    `bson:"recipient"`
	Since     int64  `bson:"since"`
}

// recipientsOf selects the recipients a preference target names, whatever their case: one address, or
// every address of a domain.
func recipientsOf(target string) bson.D {
	pattern := "^" + regexp.QuoteMeta(target) + "$"
	if !strings.Contains(target, "@") {
		pattern = "@" + regexp.QuoteMeta(target) + "$"
	}
	return bson.D{{Key: "email", Value: bson.D{{Key: "$regex", Value: pattern}, {Key: "$options", Value: "i"}}}}
}

// stopTracking marks, inside the caller's transaction, every message sent to e's target so that its
// events for that recipient (all of them for a shared render) are no longer recorded, and writes
// those messages' guards so that an event being recorded cannot commit past the change.
func (db *DB) stopTracking(ctx context.Context, e consent.Entry) error {
	rs, err := all[recipientDoc](ctx, db.c("recipients"), recipientsOf(strings.ToLower(e.Target)))
	if err != nil {
		return fmt.Errorf("stop tracking %s: recipients: %w", e.Target, err)
	}
	if len(rs) == 0 {
		return nil
	}
	ids := make([]string, 0, len(rs))
	seen := map[string]bool{}
	for _, r := range rs {
		if !seen[r.MessageID] {
			seen[r.MessageID] = true
			ids = append(ids, r.MessageID)
		}
	}
	// RecordEvents reads untracked and then writes the counters of the messages it records events for:
	// writing those messages here too makes it conflict with this change instead of missing it.
	if _, err := db.c("messages").UpdateMany(ctx, bson.D{{Key: "id", Value: bson.D{{Key: "$in", Value: ids}}}}, bumpGuard()); err != nil {
		return fmt.Errorf("stop tracking %s: guard messages: %w", e.Target, err)
	}
	heads, err := all[messageHead](ctx, db.c("messages"), bson.D{{Key: "id", Value: bson.D{{Key: "$in", Value: ids}}}})
	if err != nil {
		return fmt.Errorf("stop tracking %s: messages: %w", e.Target, err)
	}
	individual := map[string]bool{}
	for _, h := range heads {
		individual[h.ID] = h.Individual != 0
	}
	for _, r := range rs {
		doc := untrackedDoc{MessageID: r.MessageID, Recipient: followed.Shared, Since: e.At.UnixMilli()}
		if individual[r.MessageID] {
			doc.Recipient = r.Idx
		}
		key := bson.D{{Key: "message_id", Value: doc.MessageID}, {Key: "recipient", Value: doc.Recipient}}
		if _, err := db.c("untracked").UpdateOne(ctx, key, bson.D{{Key: "$setOnInsert", Value: doc}},
			options.UpdateOne().SetUpsert(true)); err != nil {
			return fmt.Errorf("stop tracking %s: %w", e.Target, err)
		}
	}
	return nil
}

// untracked returns, of the messages named, the recipients whose events are no longer recorded.
func (db *DB) untracked(ctx context.Context, messageIDs []string) (map[string]map[int]bool, error) {
	docs, err := all[untrackedDoc](ctx, db.c("untracked"), bson.D{{Key: "message_id", Value: bson.D{{Key: "$in", Value: messageIDs}}}})
	if err != nil {
		return nil, fmt.Errorf("untracked recipients: %w", err)
	}
	out := map[string]map[int]bool{}
	for _, d := range docs {
		if out[d.MessageID] == nil {
			out[d.MessageID] = map[int]bool{}
		}
		out[d.MessageID][d.Recipient] = true
	}
	return out, nil
}
