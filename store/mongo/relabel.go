package mongo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mdb "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/engage-email/engage/followed"
)

var _ followed.LabelStore = (*DB)(nil)

// Relabel implements followed.Store in one transaction: the events flip to machine, the counters
// they moved move back, and each audience entry whose first event was relabelled passes to the
// recipient's next person's event, or goes with the unique count it held.
func (db *DB) Relabel(ctx context.Context, rs []followed.Relabel) error {
	if err := followed.CheckRelabels(rs); err != nil {
		return fmt.Errorf("mongo: relabel: %w", err)
	}
	if len(rs) == 0 {
		return nil
	}
	return db.tx(ctx, "relabel", func(ctx context.Context) error { return db.relabel(ctx, rs) })
}

func (db *DB) relabel(ctx context.Context, rs []followed.Relabel) error {
	label := map[string]followed.Relabel{}
	ids := make([]string, 0, len(rs))
	for _, r := range rs {
		if _, ok := label[r.EventID]; !ok {
			ids = append(ids, r.EventID)
		}
		label[r.EventID] = r
	}
	evs, err := all[eventDoc](ctx, db.c("events"), bson.D{{Key: "id", Value: bson.D{{Key: "$in", Value: ids}}}, {Key: "machine", Value: int64(0)},
		{Key: "kind", Value: bson.D{{Key: "$in", Value: bson.A{string(followed.Opened), string(followed.LinkClicked), string(followed.AttachmentOpened)}}}}})
	if err != nil {
		return fmt.Errorf("events: %w", err)
	}
	if len(evs) == 0 {
		return nil
	}
	deltas := map[string]*messageDelta{}
	links := map[linkKey]*[2]int{}
	touched := map[audienceKey][]int64{} // audience key -> times of its relabelled events
	openTimes := map[string][]int64{}    // message -> times of its relabelled opens
	for _, ev := range evs {
		r := label[ev.ID]
		if _, err := db.c("events").UpdateOne(ctx, bson.D{{Key: "id", Value: ev.ID}}, bson.D{{Key: "$set", Value: bson.D{
			{Key: "machine", Value: int64(1)}, {Key: "reason", Value: r.Reason}, {Key: "rule", Value: r.Rule}}}}); err != nil {
			return fmt.Errorf("relabel %s: %w", ev.ID, err)
		}
		dl := deltas[ev.MessageID]
		if dl == nil {
			dl = &messageDelta{}
			deltas[ev.MessageID] = dl
		}
		switch followed.EventKind(ev.Kind) {
		case followed.Opened:
			dl.opens--
			dl.machineOpens++
			k := audienceKey{ev.MessageID, ev.Recipient, "open"}
			touched[k] = append(touched[k], ev.At)
			openTimes[ev.MessageID] = append(openTimes[ev.MessageID], ev.At)
		case followed.LinkClicked:
			dl.clicks--
			dl.machineClicks++
			lk := linkKey{ev.MessageID, ev.Link}
			if links[lk] == nil {
				links[lk] = &[2]int{}
			}
			links[lk][0]--
			for _, what := range []string{"click", "link:" + strconv.Itoa(ev.Link)} {
				k := audienceKey{ev.MessageID, ev.Recipient, what}
				touched[k] = append(touched[k], ev.At)
			}
		case followed.AttachmentOpened:
			dl.attachmentOpens--
			dl.machineClicks++
		}
	}
	for k, times := range touched {
		gone, err := db.reclaim(ctx, k, times)
		if err != nil {
			return err
		}
		if !gone {
			continue
		}
		switch {
		case k.what == "open":
			deltas[k.message].uniqueOpens--
		case k.what == "click":
			deltas[k.message].uniqueClicks--
		default:
			n, _ := strconv.Atoi(k.what[len("link:"):])
			links[linkKey{k.message, n}][1]--
		}
	}
	for id, dl := range deltas {
		if _, err := db.c("messages").UpdateOne(ctx, bson.D{{Key: "id", Value: id}}, relabelUpdate(*dl)); err != nil {
			return fmt.Errorf("counters of %s: %w", id, err)
		}
		if err := db.reopenTimes(ctx, id, openTimes[id]); err != nil {
			return err
		}
	}
	for k, l := range links {
		if _, err := db.c("links").UpdateOne(ctx, bson.D{{Key: "message_id", Value: k.message}, {Key: "idx", Value: k.link}},
			linkRelabelUpdate(l[0], l[1])); err != nil {
			return fmt.Errorf("clicks of %s/%d: %w", k.message, k.link, err)
		}
	}
	return nil
}

// personEvents selects the events of an audience key still counted as a person's.
func personEvents(k audienceKey) bson.D {
	f := bson.D{{Key: "message_id", Value: k.message}, {Key: "recipient", Value: k.recipient}, {Key: "machine", Value: int64(0)}}
	switch {
	case k.what == "open":
		return append(f, bson.E{Key: "kind", Value: string(followed.Opened)})
	case k.what == "click":
		return append(f, bson.E{Key: "kind", Value: string(followed.LinkClicked)}, bson.E{Key: "link", Value: bson.D{{Key: "$gte", Value: 0}}})
	default:
		n, _ := strconv.Atoi(k.what[len("link:"):])
		return append(f, bson.E{Key: "kind", Value: string(followed.LinkClicked)}, bson.E{Key: "link", Value: n})
	}
}

// reclaim moves an audience entry claimed at one of times to the key's next person's event, or deletes
// it when none remains (gone). An entry claimed at another time (its event purged) stays.
func (db *DB) reclaim(ctx context.Context, k audienceKey, times []int64) (gone bool, err error) {
	key := bson.D{{Key: "message_id", Value: k.message}, {Key: "recipient", Value: k.recipient}, {Key: "what", Value: k.what}}
	var aud audienceDoc
	if err := db.c("audience").FindOne(ctx, key).Decode(&aud); err != nil {
		if errors.Is(err, mdb.ErrNoDocuments) {
			return false, nil
		}
		return false, fmt.Errorf("audience: %w", err)
	}
	claimed := false
	for _, t := range times {
		claimed = claimed || t == aud.At
	}
	if !claimed {
		return false, nil
	}
	var next eventDoc
	err = db.c("events").FindOne(ctx, personEvents(k), options.FindOne().SetSort(bson.D{{Key: "at", Value: 1}, {Key: "id", Value: 1}})).Decode(&next)
	if errors.Is(err, mdb.ErrNoDocuments) {
		_, err = db.c("audience").DeleteOne(ctx, key)
		return err == nil, err
	}
	if err != nil {
		return false, fmt.Errorf("audience: %w", err)
	}
	_, err = db.c("audience").UpdateOne(ctx, key, bson.D{{Key: "$set", Value: bson.D{{Key: "at", Value: next.At}}}})
	return false, err
}

// reopenTimes reads a message's first and last open again once its opens moved, as the embedded
// store does: audience rows outlive the retention purge, so they bound both when the events are gone.
func (db *DB) reopenTimes(ctx context.Context, messageID string, times []int64) error {
	if len(times) == 0 {
		return nil
	}
	first, err := db.extreme(ctx, "audience", bson.D{{Key: "message_id", Value: messageID}, {Key: "what", Value: "open"}}, 1)
	if err != nil {
		return err
	}
	last, err := db.extreme(ctx, "audience", bson.D{{Key: "message_id", Value: messageID}, {Key: "what", Value: "open"}}, -1)
	if err != nil {
		return err
	}
	lastEvent, err := db.extreme(ctx, "events", bson.D{{Key: "message_id", Value: messageID}, {Key: "kind", Value: string(followed.Opened)},
		{Key: "machine", Value: int64(0)}}, -1)
	if err != nil {
		return err
	}
	if lastEvent != nil && (last == nil || *lastEvent > *last) {
		last = lastEvent
	}
	if _, err := db.c("messages").UpdateOne(ctx, bson.D{{Key: "id", Value: messageID}}, bson.D{{Key: "$set", Value: bson.D{
		{Key: "first_opened_at", Value: first}, {Key: "last_opened_at", Value: last}}}}); err != nil {
		return fmt.Errorf("open times of %s: %w", messageID, err)
	}
	return nil
}

// extreme is the smallest (order 1) or largest (order -1) "at" among a collection's matching rows, nil for none.
func (db *DB) extreme(ctx context.Context, coll string, filter bson.D, order int) (*int64, error) {
	var x struct {
		At int64 `bson:"at"`
	}
	err := db.c(coll).FindOne(ctx, filter, options.FindOne().SetSort(bson.D{{Key: "at", Value: order}})).Decode(&x)
	if errors.Is(err, mdb.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s times: %w", coll, err)
	}
	return &x.At, nil
}

// SentTimes implements followed.LabelStore: the send time delivery recorded, per message.
func (db *DB) SentTimes(ctx context.Context, messageIDs []string) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	if len(messageIDs) == 0 {
		return out, nil
	}
	jobs, err := all[jobDoc](ctx, db.c("delivery_jobs"), bson.D{{Key: "message_id", Value: bson.D{{Key: "$in", Value: messageIDs}}},
		{Key: "sent_at", Value: bson.D{{Key: "$ne", Value: nil}}}})
	if err != nil {
		return nil, fail("sent times", err)
	}
	for _, j := range jobs {
		out[j.MessageID] = fromMillis(j.SentAt)
	}
	return out, nil
}
