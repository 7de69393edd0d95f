package mongo

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	mdb "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// countersColl holds the sequences (events, alerts, preferences, audit) that the embedded store gets
// from its integer primary keys; it is recomputed on import, so it is not copied.
const countersColl = "counters"

// index is a collection's index: its keys in order, and whether they are unique.
type index struct {
	keys   bson.D
	unique bool
}

func asc(fields ...string) bson.D {
	d := bson.D{}
	for _, f := range fields {
		d = append(d, bson.E{Key: f, Value: 1})
	}
	return d
}

// collections lists every collection in import order (messages before what hangs off them) with its
// indexes: the unique ones are the embedded store's primary keys and unique columns, which the
// conformance suite relies on (one first open, one alert per key, one job per message).
func collections() []struct {
	name    string
	indexes []index
} {
	return []struct {
		name    string
		indexes []index
	}{
		{"messages", []index{{asc("id"), true}, {bson.D{{Key: "owner", Value: 1}, {Key: "created_at", Value: -1}, {Key: "id", Value: -1}}, false},
			{bson.D{{Key: "created_at", Value: -1}, {Key: "id", Value: -1}}, false}, {asc("template_id"), false}}},
		{"recipients", []index{{asc("message_id", "idx"), true}, {asc("email"), false}}},
		{"renders", []index{{asc("message_id", "idx"), true}}},
		{"links", []index{{asc("message_id", "idx"), true}}},
		{"events", []index{{asc("id"), true}, {asc("seq"), true},
			{bson.D{{Key: "message_id", Value: 1}, {Key: "at", Value: -1}, {Key: "id", Value: -1}}, false}, {asc("at"), false},
			{asc("kind", "machine", "reason", "at", "id"), false}}},
		{"audience", []index{{asc("message_id", "recipient", "what"), true}}},
		{"untracked", []index{{asc("message_id", "recipient"), true}}},
		{"alerts", []index{{asc("seq"), true}, {asc("id"), true}, {asc("key"), true}, {asc("owner", "seq"), false}, {asc("kind", "at"), false}}},
		{"reminders", []index{{asc("id"), true}, {asc("state", "due_at"), false}, {asc("owner", "message_id", "due_at"), false}}},
		{"alert_preferences", []index{{asc("owner"), true}}},
		{"alert_cursors", []index{{asc("name"), true}}},
		{"consent_settings", []index{{asc("id"), true}}},
		{"follow_preferences", []index{{asc("seq"), true}, {bson.D{{Key: "target", Value: 1}, {Key: "seq", Value: -1}}, false}}},
		{"audit_log", []index{{asc("seq"), true}, {bson.D{{Key: "target", Value: 1}, {Key: "seq", Value: -1}}, false}}},
		{"suppressions", []index{{asc("email"), true}}},
		{"templates", []index{{asc("id"), true}, {asc("category", "name", "id"), false}}},
		{"outcomes", []index{{asc("message_id"), true}}},
		{"recipient_profiles", []index{{asc("email"), true}, {asc("domain", "zone"), false}}},
		{"delivery_jobs", []index{{asc("message_id"), true}, {asc("status", "due_at"), false}, {asc("status", "lease_until"), false},
			{asc("status", "sent_at"), false}}},
		{"render_sends", []index{{asc("message_id", "render"), true}, {asc("internet_message_id"), false}, {asc("conversation_id"), false}}},
		{"attachments", []index{{asc("id"), true}, {asc("message_id", "idx"), true}}},
		{"outbox", []index{{asc("id"), true}, {bson.D{{Key: "sent_at", Value: -1}, {Key: "id", Value: -1}}, false},
			{bson.D{{Key: "sender", Value: 1}, {Key: "sent_at", Value: -1}, {Key: "id", Value: -1}}, false}}},
		{"inbound_queue", []index{{asc("id"), true}, {asc("status", "due_at", "enqueued_at", "id"), false}, {asc("status", "done_at"), false}}},
		{"inbound_subscriptions", []index{{asc("id"), true}, {asc("mailbox", "id"), false}}},
		{"inbound_delta_links", []index{{asc("mailbox"), true}}},
		{"inbound_bounce_streaks", []index{{asc("email"), true}}},
		{"inbound_soft_bounces", []index{{asc("event_id"), true}, {asc("email"), false}}},
		{"feed_endpoints", []index{{asc("id"), true}, {asc("created_at", "id"), false}}},
		{"feed_deliveries", []index{{asc("id"), true}, {bson.D{{Key: "endpoint_id", Value: 1}, {Key: "at", Value: -1}, {Key: "id", Value: -1}}, false},
			{asc("at"), false}}},
	}
}

// prepare creates missing collections (transactions cannot always create them) and indexes, and starts
// the engagement cursor at the events already stored: history is not news.
func (db *DB) prepare(ctx context.Context) error {
	have, err := db.db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return fail("list collections", err)
	}
	exists := map[string]bool{}
	for _, n := range have {
		exists[n] = true
	}
	create := func(name string) error {
		if exists[name] {
			return nil
		}
		err := db.db.CreateCollection(ctx, name)
		var ce mdb.CommandError
		if err != nil && !(errors.As(err, &ce) && ce.Code == 48) { // 48: NamespaceExists, another instance won
			return fail("create collection "+name, err)
		}
		return nil
	}
	if err := create(countersColl); err != nil {
		return err
	}
	for _, c := range collections() {
		if err := create(c.name); err != nil {
			return err
		}
		models := make([]mdb.IndexModel, 0, len(c.indexes))
		for _, ix := range c.indexes {
			m := mdb.IndexModel{Keys: ix.keys}
			if ix.unique {
				m.Options = options.Index().SetUnique(true)
			}
			models = append(models, m)
		}
		if _, err := db.c(c.name).Indexes().CreateMany(ctx, models); err != nil {
			return fail("indexes of "+c.name, err)
		}
	}
	var seq struct {
		Seq int64 `bson:"seq"`
	}
	err = db.c(countersColl).FindOne(ctx, idFilter("events")).Decode(&seq)
	if err != nil && !errors.Is(err, mdb.ErrNoDocuments) {
		return fail("events sequence", err)
	}
	if _, err := db.c("alert_cursors").UpdateOne(ctx, bson.D{{Key: "name", Value: engagementCursor}},
		bson.D{{Key: "$setOnInsert", Value: bson.D{{Key: "seq", Value: seq.Seq}}}}, options.UpdateOne().SetUpsert(true)); err != nil {
		return fail("engagement cursor", fmt.Errorf("start: %w", err))
	}
	return nil
}

const engagementCursor = "engagements"
