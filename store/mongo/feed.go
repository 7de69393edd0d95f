package mongo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mdb "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/engage-email/engage/feed"
	"github.com/engage-email/engage/followed"
)

var _ feed.Store = (*DB)(nil)

// responsesPipeline reads the events in positions (after, upper] of the kinds asked, with the message's
// subject and owner (events of a message no longer stored are skipped, as the embedded store's join
// does) and the recipient's address ("" for a shared render). The limit comes after the join, so a
// skipped event never shortens a page that has more to give.
func responsesPipeline(q feed.Query, upper int64) bson.A {
	kinds := make(a, len(q.Kinds))
	for i, k := range q.Kinds {
		kinds[i] = string(k)
	}
	match := d{{Key: "seq", Value: d{{Key: "$gt", Value: q.After}, {Key: "$lte", Value: upper}}}, {Key: "kind", Value: d{{Key: "$in", Value: kinds}}}}
	if !q.IncludeMachine {
		match = append(match, e{Key: "machine", Value: int64(0)})
	}
	return a{
		d{{Key: "$match", Value: match}},
		d{{Key: "$sort", Value: d{{Key: "seq", Value: 1}}}},
		d{{Key: "$lookup", Value: d{{Key: "from", Value: "messages"}, {Key: "localField", Value: "message_id"},
			{Key: "foreignField", Value: "id"}, {Key: "as", Value: "m"},
			{Key: "pipeline", Value: a{d{{Key: "$project", Value: d{{Key: "_id", Value: 0}, {Key: "owner", Value: 1}, {Key: "subject", Value: 1}}}}}}}}},
		d{{Key: "$unwind", Value: "$m"}},
		d{{Key: "$limit", Value: int64(q.Limit)}},
		d{{Key: "$lookup", Value: d{{Key: "from", Value: "recipients"}, {Key: "let", Value: d{{Key: "mid", Value: "$message_id"}, {Key: "idx", Value: "$recipient"}}},
			{Key: "as", Value: "r"}, {Key: "pipeline", Value: a{
				d{{Key: "$match", Value: d{{Key: "$expr", Value: d{{Key: "$and", Value: a{
					d{{Key: "$eq", Value: a{"$message_id", "$$mid"}}}, d{{Key: "$eq", Value: a{"$idx", "$$idx"}}}}}}}}}},
				d{{Key: "$project", Value: d{{Key: "_id", Value: 0}, {Key: "email", Value: 1}}}},
			}}}}},
		d{{Key: "$project", Value: d{{Key: "_id", Value: 0}, {Key: "seq", Value: 1}, {Key: "id", Value: 1}, {Key: "kind", Value: 1},
			{Key: "message_id", Value: 1}, {Key: "subject", Value: "$m.subject"}, {Key: "owner", Value: "$m.owner"},
			{Key: "email", Value: d{{Key: "$ifNull", Value: a{d{{Key: "$first", Value: "$r.email"}}, ""}}}},
			{Key: "at", Value: 1}, {Key: "url", Value: 1}, {Key: "device_type", Value: 1}, {Key: "device_os", Value: 1},
			{Key: "device_client", Value: 1}, {Key: "machine", Value: 1}, {Key: "reason", Value: 1}}}},
	}
}

type responseDoc struct {
	Seq          int64  `bson:"seq"`
	ID           string `bson:"id"`
	Kind         string `bson:"kind"`
	MessageID    string `bson:"message_id"`
	Subject      string `bson:"subject"`
	Owner        string `bson:"owner"`
	Email        string `bson:"email"`
	At           int64  `bson:"at"`
	URL          string `bson:"url"`
	DeviceType   string `bson:"device_type"`
	DeviceOS     string `bson:"device_os"`
	DeviceClient string `bson:"device_client"`
	Machine      int64  `bson:"machine"`
	Reason       string `bson:"reason"`
}

func (x responseDoc) record() feed.Record {
	r := feed.Record{Seq: x.Seq, EventID: x.ID, Kind: followed.EventKind(x.Kind), MessageID: x.MessageID, Subject: x.Subject,
		Owner: x.Owner, Recipient: x.Email, At: ms(x.At), URL: x.URL,
		Device:  followed.Device{Type: followed.DeviceType(x.DeviceType), OS: x.DeviceOS, Client: x.DeviceClient},
		Machine: x.Machine != 0, Reason: x.Reason}
	r.Category, _ = feed.CategoryOf(r.Kind)
	return r
}

// newestSeq reads the largest event position stored.
func (db *DB) newestSeq(ctx context.Context) (int64, error) {
	var x struct {
		Seq int64 `bson:"seq"`
	}
	err := db.c("events").FindOne(ctx, d{}, options.FindOne().SetSort(d{{Key: "seq", Value: -1}}).
		SetProjection(d{{Key: "_id", Value: 0}, {Key: "seq", Value: 1}})).Decode(&x)
	if err != nil && !errors.Is(err, mdb.ErrNoDocuments) {
		return 0, err
	}
	return x.Seq, nil
}

// Responses implements feed.Store. It reads in one snapshot transaction; events get their positions
// in the transaction that stores them, from a counter document that serialises those transactions,
// so one that commits position n commits after every position below n and the snapshot has no gaps.
func (db *DB) Responses(ctx context.Context, q feed.Query) (feed.Page, error) {
	var page feed.Page
	err := db.tx(ctx, "responses", func(ctx context.Context) error {
		newest, err := db.newestSeq(ctx)
		if err != nil {
			return err
		}
		upper := min(newest, q.After+feed.ScanLimit)
		if q.Through > 0 {
			upper = min(upper, q.Through)
		}
		page = feed.Page{Through: max(upper, q.After), Newest: newest}
		if upper <= q.After || len(q.Kinds) == 0 || q.Limit <= 0 {
			return nil
		}
		docs, err := aggregate[responseDoc](ctx, db.c("events"), responsesPipeline(q, upper))
		if err != nil {
			return err
		}
		for _, x := range docs {
			page.Records = append(page.Records, x.record())
		}
		if len(page.Records) == q.Limit {
			page.Through = page.Records[len(page.Records)-1].Seq // the page is full: the rest of the range is unread
		}
		return nil
	})
	if err != nil {
		return feed.Page{}, err
	}
	return page, nil
}

// NewestSeq implements feed.Store.
func (db *DB) NewestSeq(ctx context.Context) (int64, error) {
	seq, err := db.newestSeq(ctx)
	if err != nil {
		return 0, fail("newest event", err)
	}
	return seq, nil
}

// endpointDoc is a row of feed_endpoints.
type endpointDoc struct {
	ID              string `bson:"id"`
	URL             string `bson:"url"`
	Secret          string `bson:"secret"`
	Categories      string `bson:"categories"` // comma-separated, as the embedded store keeps them
	IntervalMS      int64  `bson:"interval_ms"`
	CreatedBy       string `bson:"created_by"`
	CreatedAt       int64  `bson:"created_at"`
	UpdatedBy       string `bson:"updated_by"`
	UpdatedAt       int64  `bson:"updated_at"`
	Cursor          int64  `bson:"cursor"`
	BatchKey        string `bson:"batch_key"`
	BatchFirst      int64  `bson:"batch_first"`
	BatchLast       int64  `bson:"batch_last"`
	BatchThrough    int64  `bson:"batch_through"`
	BatchCategories string `bson:"batch_categories"`
	BatchAttempts   int    `bson:"batch_attempts"`
	BatchFormedAt   *int64 `bson:"batch_formed_at"`
	NextAt          int64  `bson:"next_at"`
	FailingSince    *int64 `bson:"failing_since"`
	DisabledAt      *int64 `bson:"disabled_at"`
	DisabledReason  string `bson:"disabled_reason"`
	LeaseOwner      string `bson:"lease_owner"` // missing on endpoints stored before leases: free
	LeaseUntil      int64  `bson:"lease_until"`
}

func joinCategories(cs []feed.Category) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = string(c)
	}
	return strings.Join(s, ",")
}

func splitCategories(s string) []feed.Category {
	var out []feed.Category
	for _, c := range strings.Split(s, ",") {
		if c != "" {
			out = append(out, feed.Category(c))
		}
	}
	return out
}

func (x endpointDoc) endpoint() feed.Endpoint {
	ep := feed.Endpoint{ID: x.ID, URL: x.URL, Secret: x.Secret, Categories: splitCategories(x.Categories),
		Interval: time.Duration(x.IntervalMS) * time.Millisecond, CreatedBy: x.CreatedBy, CreatedAt: ms(x.CreatedAt),
		UpdatedBy: x.UpdatedBy, UpdatedAt: ms(x.UpdatedAt),
		State: feed.State{Cursor: x.Cursor, NextAt: ms(x.NextAt), FailingSince: fromMillis(x.FailingSince),
			DisabledAt: fromMillis(x.DisabledAt), DisabledReason: x.DisabledReason}, LeaseOwner: x.LeaseOwner}
	if x.LeaseUntil != 0 {
		ep.LeaseUntil = ms(x.LeaseUntil)
	}
	if x.BatchKey != "" {
		ep.State.Batch = &feed.Batch{Key: x.BatchKey, First: x.BatchFirst, Last: x.BatchLast, Through: x.BatchThrough,
			Categories: splitCategories(x.BatchCategories), Attempts: x.BatchAttempts, FormedAt: fromMillis(x.BatchFormedAt)}
	}
	return ep
}

// endpointConfig is an endpoint's configuration fields, as an update sets them.
func endpointConfig(ep feed.Endpoint) bson.D {
	return d{{Key: "url", Value: ep.URL}, {Key: "secret", Value: ep.Secret}, {Key: "categories", Value: joinCategories(ep.Categories)},
		{Key: "interval_ms", Value: ep.Interval.Milliseconds()}, {Key: "updated_by", Value: ep.UpdatedBy}, {Key: "updated_at", Value: ep.UpdatedAt.UnixMilli()}}
}

// stateFields are an endpoint's delivery state fields; no batch is kept as the embedded store's
// empty batch_key and zeroes.
func stateFields(st feed.State) bson.D {
	b := feed.Batch{}
	if st.Batch != nil {
		b = *st.Batch
	}
	return d{{Key: "cursor", Value: st.Cursor}, {Key: "batch_key", Value: b.Key}, {Key: "batch_first", Value: b.First},
		{Key: "batch_last", Value: b.Last}, {Key: "batch_through", Value: b.Through}, {Key: "batch_categories", Value: joinCategories(b.Categories)},
		{Key: "batch_attempts", Value: int64(b.Attempts)}, {Key: "batch_formed_at", Value: millis(b.FormedAt)},
		{Key: "next_at", Value: st.NextAt.UnixMilli()}, {Key: "failing_since", Value: millis(st.FailingSince)},
		{Key: "disabled_at", Value: millis(st.DisabledAt)}, {Key: "disabled_reason", Value: st.DisabledReason}}
}

// endpointInsert is a new endpoint's document.
func endpointInsert(ep feed.Endpoint) bson.D {
	doc := d{{Key: "id", Value: ep.ID}}
	doc = append(doc, endpointConfig(ep)...)
	doc = append(doc, e{Key: "created_by", Value: ep.CreatedBy}, e{Key: "created_at", Value: ep.CreatedAt.UnixMilli()})
	doc = append(doc, stateFields(ep.State)...)
	return append(doc, e{Key: "lease_owner", Value: ep.LeaseOwner}, e{Key: "lease_until", Value: leaseMillis(ep.LeaseUntil)})
}

// leaseMillis is a lease's end as stored: 0 when there is none, as in the embedded store.
func leaseMillis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// claimableEndpoint selects the endpoint when it is enabled, due at now, and its lease is free, run
// out, or instance's already; a missing lease (an endpoint stored before leases) is free, as $in
// with null matches a missing field.
func claimableEndpoint(id, instance string, now time.Time) bson.D {
	n := now.UnixMilli()
	return d{{Key: "id", Value: id}, {Key: "disabled_at", Value: nil}, {Key: "next_at", Value: d{{Key: "$lte", Value: n}}},
		{Key: "$or", Value: a{
			d{{Key: "lease_owner", Value: d{{Key: "$in", Value: a{"", nil, instance}}}}},
			d{{Key: "lease_until", Value: d{{Key: "$lte", Value: n}}}},
		}}}
}

// heldEndpoint selects the endpoint while instance holds its lease.
func heldEndpoint(id, instance string) bson.D {
	return d{{Key: "id", Value: id}, {Key: "lease_owner", Value: instance}}
}

// leasedStateUpdate sets an endpoint's delivery state and, when release, frees its lease.
func leasedStateUpdate(st feed.State, release bool) bson.D {
	set := stateFields(st)
	if release {
		set = append(set, e{Key: "lease_owner", Value: ""}, e{Key: "lease_until", Value: int64(0)})
	}
	return d{{Key: "$set", Value: set}}
}

// endpointUpdate replaces an endpoint's configuration; reset also re-enables it with a clean failure record.
func endpointUpdate(ep feed.Endpoint, reset bool) bson.D {
	set := endpointConfig(ep)
	if reset {
		set = append(set, e{Key: "disabled_at", Value: nil}, e{Key: "disabled_reason", Value: ""}, e{Key: "failing_since", Value: nil},
			e{Key: "batch_attempts", Value: int64(0)}, e{Key: "next_at", Value: ep.UpdatedAt.UnixMilli()})
		return d{{Key: "$set", Value: set}}
	}
	return d{{Key: "$set", Value: set}, {Key: "$min", Value: d{{Key: "next_at", Value: ep.UpdatedAt.Add(ep.Interval).UnixMilli()}}}}
}

// deliveryDoc is a row of feed_deliveries.
type deliveryDoc struct {
	ID         string `bson:"id"`
	EndpointID string `bson:"endpoint_id"`
	Key        string `bson:"key"`
	Attempt    int64  `bson:"attempt"`
	At         int64  `bson:"at"`
	Outcome    string `bson:"outcome"`
	StatusCode int64  `bson:"status_code"`
	Error      string `bson:"error"`
	DurationMS int64  `bson:"duration_ms"`
	Records    int64  `bson:"records"`
	FirstSeq   int64  `bson:"first_seq"`
	LastSeq    int64  `bson:"last_seq"`
}

func (x deliveryDoc) delivery() feed.Delivery {
	return feed.Delivery{ID: x.ID, EndpointID: x.EndpointID, Key: x.Key, Attempt: int(x.Attempt), At: ms(x.At), Outcome: feed.Outcome(x.Outcome),
		StatusCode: int(x.StatusCode), Error: x.Error, Duration: time.Duration(x.DurationMS) * time.Millisecond, Records: int(x.Records),
		First: x.FirstSeq, Last: x.LastSeq}
}

// CreateEndpoint implements feed.Store.
func (db *DB) CreateEndpoint(ctx context.Context, ep feed.Endpoint) error {
	if _, err := db.c("feed_endpoints").InsertOne(ctx, endpointInsert(ep)); err != nil {
		return fail("create endpoint "+ep.ID, err)
	}
	return nil
}

// Endpoint implements feed.Store.
func (db *DB) Endpoint(ctx context.Context, id string) (feed.Endpoint, error) {
	x, err := one[endpointDoc](ctx, db.c("feed_endpoints"), byID(id), "endpoint "+id, followed.ErrNotFound)
	if err != nil {
		return feed.Endpoint{}, err
	}
	return x.endpoint(), nil
}

// Endpoints implements feed.Store.
func (db *DB) Endpoints(ctx context.Context) ([]feed.Endpoint, error) {
	docs, err := all[endpointDoc](ctx, db.c("feed_endpoints"), d{}, options.Find().SetSort(d{{Key: "created_at", Value: 1}, {Key: "id", Value: 1}}))
	if err != nil {
		return nil, fail("endpoints", err)
	}
	out := make([]feed.Endpoint, len(docs))
	for i, x := range docs {
		out[i] = x.endpoint()
	}
	return out, nil
}

// UpdateEndpoint implements feed.Store.
func (db *DB) UpdateEndpoint(ctx context.Context, ep feed.Endpoint, reset bool) error {
	res, err := db.c("feed_endpoints").UpdateOne(ctx, byID(ep.ID), endpointUpdate(ep, reset))
	if err != nil {
		return fail("update endpoint "+ep.ID, err)
	}
	if res.MatchedCount == 0 {
		return fmt.Errorf("mongo: update endpoint %s: %w", ep.ID, followed.ErrNotFound)
	}
	return nil
}

// DeleteEndpoint implements feed.Store; its delivery log goes with it, in the same transaction.
func (db *DB) DeleteEndpoint(ctx context.Context, id string) error {
	return db.tx(ctx, "delete endpoint "+id, func(ctx context.Context) error {
		res, err := db.c("feed_endpoints").DeleteOne(ctx, byID(id))
		if err != nil {
			return err
		}
		if res.DeletedCount == 0 {
			return followed.ErrNotFound
		}
		_, err = db.c("feed_deliveries").DeleteMany(ctx, d{{Key: "endpoint_id", Value: id}})
		return err
	})
}

// ClaimEndpoint implements feed.Store with one FindOneAndUpdate, whose filter (enabled, due, lease free
// or run out) the server re-checks as it takes the lease: an endpoint goes to one claimer.
func (db *DB) ClaimEndpoint(ctx context.Context, id, instance string, now, until time.Time) (feed.Endpoint, error) {
	var x endpointDoc
	err := db.c("feed_endpoints").FindOneAndUpdate(ctx, claimableEndpoint(id, instance, now), claimUpdate(instance, until),
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&x)
	if errors.Is(err, mdb.ErrNoDocuments) {
		n, cerr := db.c("feed_endpoints").CountDocuments(ctx, byID(id))
		switch {
		case cerr != nil:
			return feed.Endpoint{}, fail("claim endpoint "+id, cerr)
		case n == 0:
			return feed.Endpoint{}, fmt.Errorf("mongo: claim endpoint %s: %w", id, followed.ErrNotFound)
		}
		return feed.Endpoint{}, fmt.Errorf("mongo: claim endpoint %s: %w", id, feed.ErrTaken)
	}
	if err != nil {
		return feed.Endpoint{}, fail("claim endpoint "+id, err)
	}
	return x.endpoint(), nil
}

// FixBatch implements feed.Store.
func (db *DB) FixBatch(ctx context.Context, id, instance string, st feed.State) error {
	return db.saveLeased(ctx, "fix batch of "+id, id, instance, st, nil, false)
}

// SaveState implements feed.Store in one transaction with the delivery log row.
func (db *DB) SaveState(ctx context.Context, id, instance string, st feed.State, dl *feed.Delivery) error {
	return db.saveLeased(ctx, "save endpoint state "+id, id, instance, st, dl, true)
}

// saveLeased writes an endpoint's state and a log row in one transaction while instance holds its
// lease, releasing it when asked; when the lease is not instance's the transaction writes nothing.
func (db *DB) saveLeased(ctx context.Context, what, id, instance string, st feed.State, dl *feed.Delivery, release bool) error {
	return db.tx(ctx, what, func(ctx context.Context) error {
		res, err := db.c("feed_endpoints").UpdateOne(ctx, heldEndpoint(id, instance), leasedStateUpdate(st, release))
		if err != nil {
			return err
		}
		if res.MatchedCount == 0 {
			n, err := db.c("feed_endpoints").CountDocuments(ctx, byID(id))
			switch {
			case err != nil:
				return err
			case n == 0:
				return followed.ErrNotFound
			}
			return feed.ErrLeaseLost
		}
		if dl == nil {
			return nil
		}
		_, err = db.c("feed_deliveries").InsertOne(ctx, deliveryDoc{ID: dl.ID, EndpointID: id, Key: dl.Key, Attempt: int64(dl.Attempt),
			At: dl.At.UnixMilli(), Outcome: string(dl.Outcome), StatusCode: int64(dl.StatusCode), Error: dl.Error,
			DurationMS: dl.Duration.Milliseconds(), Records: int64(dl.Records), FirstSeq: dl.First, LastSeq: dl.Last})
		return err
	})
}

// Deliveries implements feed.Store.
func (db *DB) Deliveries(ctx context.Context, endpointID string, limit int) ([]feed.Delivery, error) {
	docs, err := all[deliveryDoc](ctx, db.c("feed_deliveries"), d{{Key: "endpoint_id", Value: endpointID}},
		options.Find().SetSort(d{{Key: "at", Value: -1}, {Key: "id", Value: -1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, fail("deliveries of "+endpointID, err)
	}
	out := make([]feed.Delivery, len(docs))
	for i, x := range docs {
		out[i] = x.delivery()
	}
	return out, nil
}

// deliveriesBefore selects the delivery log rows older than before.
func deliveriesBefore(before time.Time) bson.D {
	return d{{Key: "at", Value: d{{Key: "$lt", Value: before.UnixMilli()}}}}
}

// PruneDeliveries implements feed.Store: the oldest rows first, in one transaction.
func (db *DB) PruneDeliveries(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	var n int
	err := db.tx(ctx, "prune deliveries", func(ctx context.Context) error {
		old, err := all[struct {
			ID string `bson:"id"`
		}](ctx, db.c("feed_deliveries"), deliveriesBefore(before), options.Find().SetSort(d{{Key: "at", Value: 1}}).
			SetLimit(int64(limit)).SetProjection(d{{Key: "_id", Value: 0}, {Key: "id", Value: 1}}))
		if err != nil {
			return err
		}
		ids := make(a, len(old))
		for i, x := range old {
			ids[i] = x.ID
		}
		if len(ids) == 0 {
			n = 0
			return nil
		}
		res, err := db.c("feed_deliveries").DeleteMany(ctx, d{{Key: "id", Value: d{{Key: "$in", Value: ids}}}})
		if err != nil {
			return err
		}
		n = int(res.DeletedCount)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
