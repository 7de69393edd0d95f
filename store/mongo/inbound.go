package mongo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mdb "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/engage-email/engage/delivery"
	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/inbound"
)

var _ inbound.Store = (*DB)(nil)

// Queue states, as the embedded store's inbound_queue.status keeps them.
const (
	queuePending = "PENDING"
	queueDone    = "DONE"
	queueDead    = "DEAD"
)

// inboundItemDoc is a row of inbound_queue.
type inboundItemDoc struct {
	ID             string `bson:"id"`
	Kind           string `bson:"kind"`
	Mailbox        string `bson:"mailbox"`
	GraphID        string `bson:"graph_id"`
	Raw            []byte `bson:"raw"`
	SubscriptionID string `bson:"subscription_id"`
	Event          string `bson:"event"`
	EnqueuedAt     int64  `bson:"enqueued_at"`
	Attempts       int    `bson:"attempts"`
	LastError      string `bson:"last_error"`
}

func (x inboundItemDoc) item() inbound.Item {
	return inbound.Item{ID: x.ID, Kind: inbound.ItemKind(x.Kind), Mailbox: x.Mailbox, GraphID: x.GraphID, Raw: x.Raw,
		SubscriptionID: x.SubscriptionID, Event: x.Event, EnqueuedAt: ms(x.EnqueuedAt), Attempts: x.Attempts, LastError: x.LastError}
}

func byID(id string) bson.D { return d{{Key: "id", Value: id}} }

// enqueueUpdate inserts an item as a pending row unless its id is there already (pending, given up, or
// processed and not yet purged), which an upsert of $setOnInsert leaves untouched.
func enqueueUpdate(it inbound.Item) bson.D {
	var raw any // null, as the embedded store keeps a missing body
	if it.Raw != nil {
		raw = it.Raw
	}
	at := it.EnqueuedAt.UnixMilli()
	return d{{Key: "$setOnInsert", Value: d{
		{Key: "kind", Value: string(it.Kind)}, {Key: "mailbox", Value: it.Mailbox}, {Key: "graph_id", Value: it.GraphID},
		{Key: "raw", Value: raw}, {Key: "subscription_id", Value: it.SubscriptionID}, {Key: "event", Value: it.Event},
		{Key: "status", Value: queuePending}, {Key: "enqueued_at", Value: at}, {Key: "due_at", Value: at},
		{Key: "attempts", Value: int64(0)}, {Key: "last_error", Value: ""}, {Key: "lease_owner", Value: ""},
		{Key: "lease_until", Value: int64(0)}, {Key: "done_at", Value: nil},
	}}}
}

// dueInbound selects pending items due at now whose lease is free or run out.
func dueInbound(now time.Time) bson.D {
	n := now.UnixMilli()
	return d{{Key: "status", Value: queuePending}, {Key: "due_at", Value: d{{Key: "$lte", Value: n}}},
		{Key: "lease_until", Value: d{{Key: "$lte", Value: n}}}}
}

// heldItem selects a pending item while instance holds it.
func heldItem(instance, id string) bson.D {
	return d{{Key: "id", Value: id}, {Key: "lease_owner", Value: instance}, {Key: "status", Value: queuePending}}
}

// finishUpdate keeps a processed item as DONE, without its body, so that it is recognised if queued again.
func finishUpdate(at time.Time) bson.D {
	return d{{Key: "$set", Value: d{{Key: "status", Value: queueDone}, {Key: "raw", Value: nil}, {Key: "lease_owner", Value: ""},
		{Key: "lease_until", Value: int64(0)}, {Key: "done_at", Value: at.UnixMilli()}}}}
}

// retryUpdate releases an item to be tried at at, or gives it up (dead).
func retryUpdate(at time.Time, reason string, dead bool) bson.D {
	status := queuePending
	if dead {
		status = queueDead
	}
	return d{{Key: "$set", Value: d{{Key: "status", Value: status}, {Key: "due_at", Value: at.UnixMilli()}, {Key: "last_error", Value: reason},
		{Key: "lease_owner", Value: ""}, {Key: "lease_until", Value: int64(0)}}}}
}

// purgeFilter selects the items processed before before.
func purgeFilter(before time.Time) bson.D {
	return d{{Key: "status", Value: queueDone}, {Key: "done_at", Value: d{{Key: "$lt", Value: before.UnixMilli()}}}}
}

// EnqueueInbound implements inbound.Store in one transaction, so a batch is queued whole or not at all.
func (db *DB) EnqueueInbound(ctx context.Context, items []inbound.Item) error {
	if len(items) == 0 {
		return nil
	}
	models := make([]mdb.WriteModel, len(items))
	for i, it := range items {
		models[i] = mdb.NewUpdateOneModel().SetFilter(byID(it.ID)).SetUpdate(enqueueUpdate(it)).SetUpsert(true)
	}
	return db.tx(ctx, "enqueue inbound", func(ctx context.Context) error {
		_, err := db.c("inbound_queue").BulkWrite(ctx, models)
		return err
	})
}

// ClaimInbound implements inbound.Store with one FindOneAndUpdate per item, oldest due first, whose
// filter the server re-checks as it takes the lease: an item goes to one claimer.
func (db *DB) ClaimInbound(ctx context.Context, instance string, now time.Time, lease time.Duration, limit int) ([]inbound.Item, error) {
	var items []inbound.Item
	update := append(claimUpdate(instance, now.Add(lease)), e{Key: "$inc", Value: d{{Key: "attempts", Value: int64(1)}}})
	opts := options.FindOneAndUpdate().SetReturnDocument(options.After).
		SetSort(d{{Key: "due_at", Value: 1}, {Key: "enqueued_at", Value: 1}, {Key: "id", Value: 1}})
	for len(items) < limit {
		var x inboundItemDoc
		err := db.c("inbound_queue").FindOneAndUpdate(ctx, dueInbound(now), update, opts).Decode(&x)
		if errors.Is(err, mdb.ErrNoDocuments) {
			break
		}
		if err != nil {
			return nil, fail("claim inbound", err)
		}
		items = append(items, x.item())
	}
	// Claimed by due time; the processor handles items oldest first, as the embedded store returns them.
	slices.SortStableFunc(items, func(a, b inbound.Item) int {
		if c := a.EnqueuedAt.Compare(b.EnqueuedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return items, nil
}

// FinishInbound implements inbound.Store.
func (db *DB) FinishInbound(ctx context.Context, instance, id string) error {
	return db.settleInbound(ctx, instance, id, finishUpdate(time.Now()))
}

// RetryInbound implements inbound.Store.
func (db *DB) RetryInbound(ctx context.Context, instance, id string, at time.Time, reason string, dead bool) error {
	return db.settleInbound(ctx, instance, id, retryUpdate(at, reason, dead))
}

func (db *DB) settleInbound(ctx context.Context, instance, id string, update bson.D) error {
	res, err := db.c("inbound_queue").UpdateOne(ctx, heldItem(instance, id), update)
	if err != nil {
		return fail("settle inbound "+id, err)
	}
	if res.MatchedCount == 0 {
		return fmt.Errorf("mongo: settle inbound %s for %s: %w", id, instance, inbound.ErrLeaseLost)
	}
	return nil
}

// InboundPending implements inbound.Store.
func (db *DB) InboundPending(ctx context.Context) (int, error) {
	n, err := db.c("inbound_queue").CountDocuments(ctx, d{{Key: "status", Value: queuePending}})
	if err != nil {
		return 0, fail("inbound pending", err)
	}
	return int(n), nil
}

// PurgeInbound implements inbound.Store.
func (db *DB) PurgeInbound(ctx context.Context, before time.Time) (int, error) {
	res, err := db.c("inbound_queue").DeleteMany(ctx, purgeFilter(before))
	if err != nil {
		return 0, fail("purge inbound", err)
	}
	return int(res.DeletedCount), nil
}

// subscriptionDoc is a row of inbound_subscriptions.
type subscriptionDoc struct {
	ID          string `bson:"id"`
	Mailbox     string `bson:"mailbox"`
	ClientState string `bson:"client_state"`
	ExpiresAt   int64  `bson:"expires_at"`
	CreatedAt   int64  `bson:"created_at"`
}

func (x subscriptionDoc) subscription() inbound.Subscription {
	return inbound.Subscription{ID: x.ID, Mailbox: x.Mailbox, ClientState: x.ClientState, ExpiresAt: ms(x.ExpiresAt), CreatedAt: ms(x.CreatedAt)}
}

// subscriptionUpsert records a subscription, or replaces all but when it was created.
func subscriptionUpsert(s inbound.Subscription) bson.D {
	return d{
		{Key: "$set", Value: d{{Key: "mailbox", Value: strings.ToLower(s.Mailbox)}, {Key: "client_state", Value: s.ClientState},
			{Key: "expires_at", Value: s.ExpiresAt.UnixMilli()}}},
		{Key: "$setOnInsert", Value: d{{Key: "created_at", Value: s.CreatedAt.UnixMilli()}}},
	}
}

// SaveInboxSubscription implements inbound.Store.
func (db *DB) SaveInboxSubscription(ctx context.Context, s inbound.Subscription) error {
	if _, err := db.c("inbound_subscriptions").UpdateOne(ctx, byID(s.ID), subscriptionUpsert(s), options.UpdateOne().SetUpsert(true)); err != nil {
		return fail("save subscription "+s.ID, err)
	}
	return nil
}

// InboxSubscription implements inbound.Store.
func (db *DB) InboxSubscription(ctx context.Context, id string) (inbound.Subscription, error) {
	x, err := one[subscriptionDoc](ctx, db.c("inbound_subscriptions"), byID(id), "subscription "+id, followed.ErrNotFound)
	if err != nil {
		return inbound.Subscription{}, err
	}
	return x.subscription(), nil
}

// InboxSubscriptions implements inbound.Store.
func (db *DB) InboxSubscriptions(ctx context.Context) ([]inbound.Subscription, error) {
	docs, err := all[subscriptionDoc](ctx, db.c("inbound_subscriptions"), d{},
		options.Find().SetSort(d{{Key: "mailbox", Value: 1}, {Key: "id", Value: 1}}))
	if err != nil {
		return nil, fail("subscriptions", err)
	}
	out := make([]inbound.Subscription, len(docs))
	for i, x := range docs {
		out[i] = x.subscription()
	}
	return out, nil
}

// DeleteInboxSubscription implements inbound.Store.
func (db *DB) DeleteInboxSubscription(ctx context.Context, id string) error {
	if _, err := db.c("inbound_subscriptions").DeleteOne(ctx, byID(id)); err != nil {
		return fail("delete subscription "+id, err)
	}
	return nil
}

func mailboxKey(mailbox string) bson.D { return d{{Key: "mailbox", Value: strings.ToLower(mailbox)}} }

// DeltaLink implements inbound.Store.
func (db *DB) DeltaLink(ctx context.Context, mailbox string) (string, error) {
	var x struct {
		Link string `bson:"link"`
	}
	err := db.c("inbound_delta_links").FindOne(ctx, mailboxKey(mailbox)).Decode(&x)
	if err != nil && !errors.Is(err, mdb.ErrNoDocuments) {
		return "", fail("delta link of "+mailbox, err)
	}
	return x.Link, nil
}

// SaveDeltaLink implements inbound.Store.
func (db *DB) SaveDeltaLink(ctx context.Context, mailbox, link string) error {
	if _, err := db.c("inbound_delta_links").UpdateOne(ctx, mailboxKey(mailbox), d{{Key: "$set", Value: d{{Key: "link", Value: link}}}},
		options.UpdateOne().SetUpsert(true)); err != nil {
		return fail("save delta link of "+mailbox, err)
	}
	return nil
}

// sentSince selects the jobs sent at or after since (index: status, sent_at).
func sentSince(since time.Time) bson.D {
	return d{{Key: "status", Value: string(delivery.StatusSent)}, {Key: "sent_at", Value: d{{Key: "$gte", Value: since.UnixMilli()}}}}
}

// ActiveSenders implements inbound.Store: owners are compared in lower case, as the embedded store does.
func (db *DB) ActiveSenders(ctx context.Context, since time.Time) ([]string, error) {
	var owners []string
	if err := db.c("delivery_jobs").Distinct(ctx, "owner", sentSince(since)).Decode(&owners); err != nil {
		return nil, fail("active senders", err)
	}
	addin, err := aggregate[struct {
		Owner string `bson:"_id"`
	}](ctx, db.c("messages"), addinSendersPipeline(since))
	if err != nil {
		return nil, fail("active senders of the Outlook add-in", err)
	}
	for _, x := range addin {
		owners = append(owners, x.Owner)
	}
	out := make([]string, 0, len(owners))
	for _, o := range owners {
		out = append(out, strings.ToLower(o))
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// addinSendersPipeline groups the owners of followed messages created since that no delivery job sends,
// as the Outlook add-in has Outlook send its own drafts (index: created_at).
func addinSendersPipeline(since time.Time) bson.A {
	return a{
		d{{Key: "$match", Value: d{{Key: "created_at", Value: d{{Key: "$gte", Value: since.UnixMilli()}}}, {Key: "following", Value: int64(1)}}}},
		d{{Key: "$lookup", Value: d{{Key: "from", Value: "delivery_jobs"}, {Key: "localField", Value: "id"},
			{Key: "foreignField", Value: "message_id"}, {Key: "as", Value: "j"}, {Key: "pipeline", Value: a{
				d{{Key: "$project", Value: d{{Key: "_id", Value: 1}}}}}}}}},
		d{{Key: "$match", Value: d{{Key: "j", Value: d{{Key: "$size", Value: 0}}}}}},
		d{{Key: "$group", Value: d{{Key: "_id", Value: "$owner"}}}},
	}
}

// sentAs selects the renders sent as an internetMessageId (never the empty one a draft lacks).
func sentAs(internetID string) bson.D {
	return d{{Key: "internet_message_id", Value: d{{Key: "$eq", Value: internetID}, {Key: "$ne", Value: ""}}}}
}

// inConversation selects the renders sent in a conversation.
func inConversation(conversationID string) bson.D {
	return d{{Key: "conversation_id", Value: conversationID}}
}

// firstSend returns the first render (by message, render) that filter selects, or mdb.ErrNoDocuments.
func (db *DB) firstSend(ctx context.Context, filter bson.D) (inbound.Match, error) {
	var x renderSendDoc
	err := db.c("render_sends").FindOne(ctx, filter, options.FindOne().SetSort(d{{Key: "message_id", Value: 1}, {Key: "render", Value: 1}})).Decode(&x)
	return inbound.Match{MessageID: x.MessageID, Render: x.Render}, err
}

// MatchSend implements inbound.Store.
func (db *DB) MatchSend(ctx context.Context, ids []string, conversationID string) (inbound.Match, error) {
	for _, id := range ids {
		m, err := db.firstSend(ctx, sentAs(id))
		if err == nil {
			return m, nil
		}
		if !errors.Is(err, mdb.ErrNoDocuments) {
			return inbound.Match{}, fail("match send "+id, err)
		}
	}
	if conversationID != "" {
		m, err := db.firstSend(ctx, inConversation(conversationID))
		if err == nil {
			return m, nil
		}
		if !errors.Is(err, mdb.ErrNoDocuments) {
			return inbound.Match{}, fail("match conversation "+conversationID, err)
		}
	}
	return inbound.Match{}, fmt.Errorf("mongo: match send: %w", followed.ErrNotFound)
}

// RecordOutlookSend implements inbound.Store in a transaction that writes the message's guard, as
// creating or claiming its job does, so a job created meanwhile conflicts with it and is respected.
func (db *DB) RecordOutlookSend(ctx context.Context, s inbound.OutlookSend) error {
	return db.tx(ctx, fmt.Sprintf("record Outlook send of %s/%d", s.MessageID, s.Render), func(ctx context.Context) error {
		found, err := db.guardMessage(ctx, s.MessageID)
		if err != nil {
			return err
		}
		if !found {
			return nil // gone: nothing to record
		}
		n, err := db.c("delivery_jobs").CountDocuments(ctx, jobKey(s.MessageID), options.Count().SetLimit(1))
		if err != nil {
			return err
		}
		if n > 0 {
			return nil // sent by a delivery job
		}
		key := d{{Key: "message_id", Value: s.MessageID}, {Key: "render", Value: s.Render}}
		_, err = db.c("render_sends").UpdateOne(ctx, key, d{{Key: "$setOnInsert", Value: d{{Key: "draft_id", Value: ""},
			{Key: "internet_message_id", Value: s.InternetMessageID}, {Key: "conversation_id", Value: s.ConversationID},
			{Key: "sent_at", Value: s.SentAt.UnixMilli()}}}}, options.UpdateOne().SetUpsert(true))
		return err
	})
}

// engagedSincePipeline finds, from the address's recipient rows, one human open or reply of theirs after
// last: what ends a soft-bounce streak.
func engagedSincePipeline(email string, last int64) bson.A {
	return a{
		d{{Key: "$match", Value: d{{Key: "email", Value: email}}}},
		d{{Key: "$lookup", Value: d{{Key: "from", Value: "events"}, {Key: "let", Value: d{{Key: "mid", Value: "$message_id"}, {Key: "idx", Value: "$idx"}}},
			{Key: "as", Value: "e"}, {Key: "pipeline", Value: a{
				d{{Key: "$match", Value: d{
					{Key: "machine", Value: int64(0)},
					{Key: "kind", Value: d{{Key: "$in", Value: a{string(followed.Opened), string(followed.Replied)}}}},
					{Key: "at", Value: d{{Key: "$gt", Value: last}}},
					{Key: "$expr", Value: d{{Key: "$and", Value: a{
						d{{Key: "$eq", Value: a{"$message_id", "$$mid"}}}, d{{Key: "$eq", Value: a{"$recipient", "$$idx"}}}}}}},
				}}},
				d{{Key: "$limit", Value: int64(1)}},
				d{{Key: "$project", Value: d{{Key: "_id", Value: 1}}}},
			}}}}},
		d{{Key: "$match", Value: d{{Key: "e.0", Value: d{{Key: "$exists", Value: true}}}}}},
		d{{Key: "$limit", Value: int64(1)}},
		d{{Key: "$project", Value: d{{Key: "_id", Value: 1}}}},
	}
}

// softBounceClaim records that a bounce event was counted; an upsert that matched means it was already.
func softBounceClaim(email string) bson.D {
	return d{{Key: "$setOnInsert", Value: d{{Key: "email", Value: email}}}}
}

// streakUpdate sets an address's streak, keeping the latest bounce time.
func streakUpdate(streak int, at time.Time) bson.D {
	return d{{Key: "$set", Value: d{{Key: "streak", Value: int64(streak)}}}, {Key: "$max", Value: d{{Key: "last_at", Value: at.UnixMilli()}}}}
}

// AddSoftBounce implements inbound.Store in one transaction: the streak restarts when the address opened
// (as a person) or replied after the last soft bounce counted.
func (db *DB) AddSoftBounce(ctx context.Context, email, eventID string, at time.Time) (int, error) {
	email = strings.ToLower(email)
	var streak int
	err := db.tx(ctx, "soft bounce of "+email, func(ctx context.Context) error {
		var x struct {
			Streak int   `bson:"streak"`
			LastAt int64 `bson:"last_at"`
		}
		err := db.c("inbound_bounce_streaks").FindOne(ctx, d{{Key: "email", Value: email}}).Decode(&x)
		if err != nil && !errors.Is(err, mdb.ErrNoDocuments) {
			return err
		}
		streak = x.Streak
		res, err := db.c("inbound_soft_bounces").UpdateOne(ctx, d{{Key: "event_id", Value: eventID}}, softBounceClaim(email),
			options.UpdateOne().SetUpsert(true))
		if err != nil {
			return err
		}
		if res.UpsertedCount == 0 {
			return nil // counted already
		}
		if streak > 0 {
			engaged, err := aggregate[bson.Raw](ctx, db.c("recipients"), engagedSincePipeline(email, x.LastAt))
			if err != nil {
				return fmt.Errorf("engagement: %w", err)
			}
			if len(engaged) > 0 {
				streak = 0
			}
		}
		streak++
		_, err = db.c("inbound_bounce_streaks").UpdateOne(ctx, d{{Key: "email", Value: email}}, streakUpdate(streak, at),
			options.UpdateOne().SetUpsert(true))
		return err
	})
	if err != nil {
		return 0, err
	}
	return streak, nil
}

// ResetBounceStreak implements inbound.Store.
func (db *DB) ResetBounceStreak(ctx context.Context, email string) error {
	if _, err := db.c("inbound_bounce_streaks").DeleteOne(ctx, d{{Key: "email", Value: strings.ToLower(email)}}); err != nil {
		return fail("reset bounce streak of "+email, err)
	}
	return nil
}
