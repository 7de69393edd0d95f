package mongo

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/engage-email/engage/followed"
)

// earlyScan is how many candidate opens one round reads; the send-time condition needs the message,
// so candidates are filtered here and rounds repeat until a page is full or the range is exhausted.
const earlyScan = 500

// personOpensAfter selects a person's unlabelled opens after (at, id) and before a cut-off, the range
// the prefetch sweep pages through (index: kind, machine, reason, at, id).
func personOpensAfter(afterAt int64, afterID string, before int64) bson.D {
	return bson.D{
		{Key: "kind", Value: string(followed.Opened)},
		{Key: "machine", Value: int64(0)},
		{Key: "reason", Value: ""},
		{Key: "at", Value: bson.D{{Key: "$lt", Value: before}}},
		{Key: "$or", Value: bson.A{
			bson.D{{Key: "at", Value: bson.D{{Key: "$gt", Value: afterAt}}}},
			bson.D{{Key: "at", Value: afterAt}, {Key: "id", Value: bson.D{{Key: "$gt", Value: afterID}}}},
		}},
	}
}

// notTheirs are event kinds their mail system writes, not the recipient: no sign of a person.
var notTheirs = bson.A{string(followed.AutoReplied), string(followed.Bounced)}

// laterActivity selects the events of one recipient of one message after (at, id) that are not a
// machine's, nor their mail system's; ids order events made in the same millisecond.
func laterActivity(messageID string, recipient int, at int64, id string) bson.D {
	return bson.D{
		{Key: "message_id", Value: messageID},
		{Key: "recipient", Value: recipient},
		{Key: "machine", Value: int64(0)},
		{Key: "kind", Value: bson.D{{Key: "$nin", Value: notTheirs}}},
		{Key: "$or", Value: bson.A{
			bson.D{{Key: "at", Value: bson.D{{Key: "$gt", Value: at}}}},
			bson.D{{Key: "at", Value: at}, {Key: "id", Value: bson.D{{Key: "$gt", Value: id}}}},
		}},
	}
}

// earlierAction selects the same recipient's actions other than opens, not a machine's nor their mail
// system's, before (at, id): a click before the images loaded.
func earlierAction(messageID string, recipient int, at int64, id string) bson.D {
	return bson.D{
		{Key: "message_id", Value: messageID},
		{Key: "recipient", Value: recipient},
		{Key: "machine", Value: int64(0)},
		{Key: "kind", Value: bson.D{{Key: "$nin", Value: append(bson.A{string(followed.Opened)}, notTheirs...)}}},
		{Key: "$or", Value: bson.A{
			bson.D{{Key: "at", Value: bson.D{{Key: "$lt", Value: at}}}},
			bson.D{{Key: "at", Value: at}, {Key: "id", Value: bson.D{{Key: "$lt", Value: id}}}},
		}},
	}
}

// EarlyOpens implements followed.LabelStore.
func (db *DB) EarlyOpens(ctx context.Context, q followed.EarlyOpenQuery) ([]followed.EarlyOpen, error) {
	if q.Limit <= 0 || q.Within < 0 {
		return nil, fmt.Errorf("mongo: early opens: %w: limit %d, within %s", followed.ErrBadInput, q.Limit, q.Within)
	}
	afterAt, afterID := int64(-1<<62), ""
	if q.After != nil {
		afterAt, afterID = q.After.At.UnixMilli(), q.After.ID
	}
	var out []followed.EarlyOpen
	for len(out) < q.Limit {
		cands, err := all[eventDoc](ctx, db.c("events"), personOpensAfter(afterAt, afterID, q.Before.UnixMilli()),
			options.Find().SetSort(bson.D{{Key: "at", Value: 1}, {Key: "id", Value: 1}}).SetLimit(earlyScan))
		if err != nil {
			return nil, fail("early opens", err)
		}
		if len(cands) == 0 {
			return out, nil
		}
		sent, err := db.sendTimes(ctx, cands)
		if err != nil {
			return nil, err
		}
		for _, c := range cands {
			afterAt, afterID = c.At, c.ID
			s, ok := sent[c.MessageID]
			if !ok {
				continue // the message is gone: nothing to judge against
			}
			if d := time.Duration(c.At-s.UnixMilli()) * time.Millisecond; d > q.Within || -d > q.Within {
				continue
			}
			o := followed.EarlyOpen{Event: c.event(), SentAt: s}
			latest, err := db.extreme(ctx, "events", laterActivity(c.MessageID, c.Recipient, c.At, c.ID), -1)
			if err != nil {
				return nil, fail("early opens: later activity", err)
			}
			if latest == nil {
				acted, err := db.extreme(ctx, "events", earlierAction(c.MessageID, c.Recipient, c.At, c.ID), -1)
				if err != nil {
					return nil, fail("early opens: earlier activity", err)
				}
				if acted != nil {
					latest = &c.At // they acted before the open: activity at its own time
				}
			}
			o.LastActivity = fromMillis(latest)
			if out = append(out, o); len(out) == q.Limit {
				return out, nil
			}
		}
		if len(cands) < earlyScan {
			return out, nil
		}
	}
	return out, nil
}

// sendTimes is each candidate's message send time: delivery's when it sent it, else the creation.
func (db *DB) sendTimes(ctx context.Context, cands []eventDoc) (map[string]time.Time, error) {
	ids := make([]string, 0, len(cands))
	seen := map[string]bool{}
	for _, c := range cands {
		if !seen[c.MessageID] {
			seen[c.MessageID] = true
			ids = append(ids, c.MessageID)
		}
	}
	out, err := db.SentTimes(ctx, ids)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, id := range ids {
		if _, ok := out[id]; !ok {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	msgs, err := all[messageDoc](ctx, db.c("messages"), bson.D{{Key: "id", Value: bson.D{{Key: "$in", Value: missing}}}},
		options.Find().SetProjection(bson.D{{Key: "id", Value: 1}, {Key: "created_at", Value: 1}}))
	if err != nil {
		return nil, fail("early opens: messages", err)
	}
	for _, m := range msgs {
		out[m.ID] = ms(m.CreatedAt)
	}
	return out, nil
}
