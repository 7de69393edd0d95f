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
	"github.com/engage-email/engage/followed"
)

var _ alerts.Store = (*DB)(nil)

type alertDoc struct {
	Seq          int64  `bson:"seq"`
	ID           string `bson:"id"`
	Key          string `bson:"key"`
	Owner        string `bson:"owner"`
	Kind         string `bson:"kind"`
	At           int64  `bson:"at"`
	MessageID    string `bson:"message_id"`
	Subject      string `bson:"subject"`
	Recipient    string `bson:"recipient"`
	DeviceType   string `bson:"device_type"`
	DeviceOS     string `bson:"device_os"`
	DeviceClient string `bson:"device_client"`
	URL          string `bson:"url"`
	ReminderID   string `bson:"reminder_id"`
	Condition    string `bson:"condition"`
	ReadAt       *int64 `bson:"read_at"`
	Withdraws    string `bson:"withdraws,omitempty"`
	Machine      string `bson:"machine,omitempty"`
}

func (x alertDoc) alert() alerts.Alert {
	return alerts.Alert{Seq: x.Seq, ID: x.ID, Key: x.Key, Owner: x.Owner, Kind: alerts.Kind(x.Kind), At: ms(x.At), MessageID: x.MessageID,
		Subject: x.Subject, Recipient: x.Recipient, Device: followed.Device{Type: followed.DeviceType(x.DeviceType), OS: x.DeviceOS,
			Client: x.DeviceClient}, URL: x.URL, Reminder: x.ReminderID, Condition: alerts.Condition(x.Condition), ReadAt: fromMillis(x.ReadAt),
		Withdraws: x.Withdraws, Machine: x.Machine}
}

func alertList(docs []alertDoc) []alerts.Alert {
	out := make([]alerts.Alert, len(docs))
	for i, x := range docs {
		out[i] = x.alert()
	}
	return out
}

// AppendAlerts implements alerts.Store.
func (db *DB) AppendAlerts(ctx context.Context, as []alerts.Alert) ([]alerts.Alert, error) {
	return db.appendAlerts(ctx, as, -1)
}

// AppendEngagementAlerts implements alerts.Store.
func (db *DB) AppendEngagementAlerts(ctx context.Context, as []alerts.Alert, through int64) ([]alerts.Alert, error) {
	return db.appendAlerts(ctx, as, through)
}

func (db *DB) appendAlerts(ctx context.Context, as []alerts.Alert, through int64) ([]alerts.Alert, error) {
	var stored []alerts.Alert
	err := db.tx(ctx, "append alerts", func(ctx context.Context) error {
		var err error
		if stored, err = db.insertAlerts(ctx, as); err != nil {
			return err
		}
		if through < 0 {
			return nil
		}
		_, err = db.c("alert_cursors").UpdateOne(ctx, bson.D{{Key: "name", Value: engagementCursor}},
			bson.D{{Key: "$max", Value: bson.D{{Key: "seq", Value: through}}}})
		return err
	})
	if err != nil {
		return nil, err
	}
	return stored, nil
}

// insertAlerts stores, inside the caller's transaction, the alerts whose key is new. Their sequence
// numbers come from the alerts counter, which every appending transaction writes: a second appender
// conflicts and is retried after the first commits, so numbers become visible in increasing order
// and a tailer that has read seq n never later meets a smaller one (no number commits late).
func (db *DB) insertAlerts(ctx context.Context, as []alerts.Alert) ([]alerts.Alert, error) {
	if len(as) == 0 {
		return nil, nil
	}
	keys := make([]string, len(as))
	for i, x := range as {
		keys[i] = x.Key
	}
	old, err := all[alertDoc](ctx, db.c("alerts"), bson.D{{Key: "key", Value: bson.D{{Key: "$in", Value: keys}}}},
		options.Find().SetProjection(bson.D{{Key: "key", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("stored alert keys: %w", err)
	}
	taken := map[string]bool{}
	for _, o := range old {
		taken[o.Key] = true
	}
	var fresh []alerts.Alert
	for _, x := range as {
		if !taken[x.Key] {
			taken[x.Key] = true
			fresh = append(fresh, x)
		}
	}
	if len(fresh) == 0 {
		return nil, nil
	}
	last, err := db.nextSeq(ctx, "alerts", len(fresh))
	if err != nil {
		return nil, err
	}
	docs := make([]any, len(fresh))
	for i := range fresh {
		x := &fresh[i]
		x.Seq = last - int64(len(fresh)) + 1 + int64(i)
		docs[i] = alertDoc{Seq: x.Seq, ID: x.ID, Key: x.Key, Owner: x.Owner, Kind: string(x.Kind), At: x.At.UnixMilli(),
			MessageID: x.MessageID, Subject: x.Subject, Recipient: x.Recipient, DeviceType: string(x.Device.Type),
			DeviceOS: x.Device.OS, DeviceClient: x.Device.Client, URL: x.URL, ReminderID: x.Reminder, Condition: string(x.Condition),
			Withdraws: x.Withdraws, Machine: x.Machine}
	}
	if _, err := db.c("alerts").InsertMany(ctx, docs); err != nil {
		return nil, fmt.Errorf("insert alerts: %w", err)
	}
	return fresh, nil
}

// AlertsAfter implements alerts.Store.
func (db *DB) AlertsAfter(ctx context.Context, after int64, limit int) ([]alerts.Alert, error) {
	docs, err := all[alertDoc](ctx, db.c("alerts"), bson.D{{Key: "seq", Value: bson.D{{Key: "$gt", Value: after}}}},
		options.Find().SetSort(bson.D{{Key: "seq", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, fail(fmt.Sprintf("alerts after %d", after), err)
	}
	return alertList(docs), nil
}

// LastAlertSeq implements alerts.Store.
func (db *DB) LastAlertSeq(ctx context.Context) (int64, error) {
	var x alertDoc
	err := db.c("alerts").FindOne(ctx, bson.D{}, options.FindOne().SetSort(bson.D{{Key: "seq", Value: -1}})).Decode(&x)
	if errors.Is(err, mdb.ErrNoDocuments) {
		return 0, nil
	}
	if err != nil {
		return 0, fail("last alert", err)
	}
	return x.Seq, nil
}

// ListAlerts implements alerts.Store.
func (db *DB) ListAlerts(ctx context.Context, q alerts.AlertQuery) ([]alerts.Alert, error) {
	order := -1
	if q.Ascending {
		order = 1
	}
	docs, err := all[alertDoc](ctx, db.c("alerts"), alertsFilter(q),
		options.Find().SetSort(bson.D{{Key: "seq", Value: order}}).SetLimit(int64(q.Limit)))
	if err != nil {
		return nil, fail("list alerts of "+q.Owner, err)
	}
	return alertList(docs), nil
}

// MarkAlertsRead implements alerts.Store.
func (db *DB) MarkAlertsRead(ctx context.Context, owner string, ids []string, at time.Time) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	res, err := db.c("alerts").UpdateMany(ctx, bson.D{{Key: "owner", Value: owner}, {Key: "read_at", Value: nil},
		{Key: "id", Value: bson.D{{Key: "$in", Value: ids}}}}, bson.D{{Key: "$set", Value: bson.D{{Key: "read_at", Value: at.UnixMilli()}}}})
	if err != nil {
		return 0, fail("mark alerts read", err)
	}
	return int(res.ModifiedCount), nil
}

type reminderDoc struct {
	ID         string `bson:"id"`
	Owner      string `bson:"owner"`
	MessageID  string `bson:"message_id"`
	Subject    string `bson:"subject"`
	Condition  string `bson:"condition"`
	DueAt      int64  `bson:"due_at"`
	CreatedAt  int64  `bson:"created_at"`
	State      string `bson:"state"`
	Reason     string `bson:"reason"`
	DoneAt     *int64 `bson:"done_at"`
	LeaseOwner string `bson:"lease_owner"`
	LeaseUntil int64  `bson:"lease_until"`
}

func (x reminderDoc) reminder() alerts.Reminder {
	return alerts.Reminder{ID: x.ID, Owner: x.Owner, MessageID: x.MessageID, Subject: x.Subject, Condition: alerts.Condition(x.Condition),
		DueAt: ms(x.DueAt), CreatedAt: ms(x.CreatedAt), State: alerts.State(x.State), Reason: x.Reason, DoneAt: fromMillis(x.DoneAt)}
}

// CreateReminder implements alerts.Store.
func (db *DB) CreateReminder(ctx context.Context, r alerts.Reminder) error {
	if _, err := db.c("reminders").InsertOne(ctx, reminderDoc{ID: r.ID, Owner: r.Owner, MessageID: r.MessageID, Subject: r.Subject,
		Condition: string(r.Condition), DueAt: r.DueAt.UnixMilli(), CreatedAt: r.CreatedAt.UnixMilli(), State: string(alerts.Pending)}); err != nil {
		return fail("create reminder "+r.ID, err)
	}
	return nil
}

// Reminders implements alerts.Store.
func (db *DB) Reminders(ctx context.Context, owner, messageID string) ([]alerts.Reminder, error) {
	f := bson.D{{Key: "owner", Value: owner}}
	if messageID != "" {
		f = append(f, bson.E{Key: "message_id", Value: messageID})
	}
	docs, err := all[reminderDoc](ctx, db.c("reminders"), f, options.Find().SetSort(bson.D{{Key: "due_at", Value: 1}, {Key: "id", Value: 1}}))
	if err != nil {
		return nil, fail("reminders of "+owner, err)
	}
	out := make([]alerts.Reminder, len(docs))
	for i, x := range docs {
		out[i] = x.reminder()
	}
	return out, nil
}

// CancelReminder implements alerts.Store: one conditional update, then the reminder as it stands.
func (db *DB) CancelReminder(ctx context.Context, owner, id string, at time.Time) (alerts.Reminder, error) {
	key := bson.D{{Key: "id", Value: id}, {Key: "owner", Value: owner}}
	if _, err := db.c("reminders").UpdateOne(ctx, append(key, bson.E{Key: "state", Value: string(alerts.Pending)}),
		bson.D{{Key: "$set", Value: bson.D{{Key: "state", Value: string(alerts.Cancelled)}, {Key: "done_at", Value: at.UnixMilli()},
			{Key: "lease_owner", Value: ""}, {Key: "lease_until", Value: int64(0)}}}}); err != nil {
		return alerts.Reminder{}, fail("cancel reminder "+id, err)
	}
	var x reminderDoc
	err := db.c("reminders").FindOne(ctx, key).Decode(&x)
	if errors.Is(err, mdb.ErrNoDocuments) {
		return alerts.Reminder{}, fmt.Errorf("mongo: reminder %s: %w", id, followed.ErrNotFound)
	}
	if err != nil {
		return alerts.Reminder{}, fail("cancel reminder "+id, err)
	}
	return x.reminder(), nil
}

// ClaimDueReminders implements alerts.Store with one FindOneAndUpdate per reminder: the filter asks
// for a free or expired lease and the update takes it, atomically on the document, so two instances
// never both hold one.
func (db *DB) ClaimDueReminders(ctx context.Context, instance string, now time.Time, lease time.Duration, limit int) ([]alerts.Reminder, error) {
	out := []alerts.Reminder{}
	opts := options.FindOneAndUpdate().SetSort(bson.D{{Key: "due_at", Value: 1}}).SetReturnDocument(options.After)
	for len(out) < limit {
		var x reminderDoc
		err := db.c("reminders").FindOneAndUpdate(ctx, dueReminders(now), claimUpdate(instance, now.Add(lease)), opts).Decode(&x)
		if errors.Is(err, mdb.ErrNoDocuments) {
			break
		}
		if err != nil {
			return nil, fail("claim reminders", err)
		}
		out = append(out, x.reminder())
	}
	return out, nil
}

// FinishReminder implements alerts.Store.
func (db *DB) FinishReminder(ctx context.Context, instance string, r alerts.Reminder, alert *alerts.Alert) error {
	return db.tx(ctx, "finish reminder "+r.ID, func(ctx context.Context) error {
		res, err := db.c("reminders").UpdateOne(ctx, bson.D{{Key: "id", Value: r.ID}, {Key: "state", Value: string(alerts.Pending)},
			{Key: "lease_owner", Value: instance}}, bson.D{{Key: "$set", Value: bson.D{{Key: "state", Value: string(r.State)},
			{Key: "reason", Value: r.Reason}, {Key: "done_at", Value: millis(r.DoneAt)}, {Key: "lease_owner", Value: ""},
			{Key: "lease_until", Value: int64(0)}}}})
		if err != nil {
			return err
		}
		if res.MatchedCount == 0 {
			return alerts.ErrLeaseLost
		}
		if alert != nil {
			_, err = db.insertAlerts(ctx, []alerts.Alert{*alert})
		}
		return err
	})
}

type preferencesDoc struct {
	Owner            string `bson:"owner"`
	FirstOpen        int64  `bson:"first_open"`
	ReplyReceived    int64  `bson:"reply_received"`
	LinkClicked      int64  `bson:"link_clicked"`
	AttachmentOpened int64  `bson:"attachment_opened"`
	FirstOpenSince   int64  `bson:"first_open_since"` // Unix milliseconds; 0: never off
}

// AlertPreferences implements alerts.Store.
func (db *DB) AlertPreferences(ctx context.Context, owner string) (alerts.Preferences, error) {
	var x preferencesDoc
	err := db.c("alert_preferences").FindOne(ctx, bson.D{{Key: "owner", Value: owner}}).Decode(&x)
	if errors.Is(err, mdb.ErrNoDocuments) {
		return alerts.DefaultPreferences, nil
	}
	if err != nil {
		return alerts.Preferences{}, fail("alert preferences of "+owner, err)
	}
	p := alerts.Preferences{FirstOpen: x.FirstOpen != 0, ReplyReceived: x.ReplyReceived != 0, LinkClicked: x.LinkClicked != 0,
		AttachmentOpened: x.AttachmentOpened != 0}
	if x.FirstOpenSince != 0 {
		p.FirstOpenSince = time.UnixMilli(x.FirstOpenSince).UTC()
	}
	return p, nil
}

// SetAlertPreferences implements alerts.Store.
func (db *DB) SetAlertPreferences(ctx context.Context, owner string, p alerts.Preferences) error {
	doc := preferencesDoc{Owner: owner, FirstOpen: b2i(p.FirstOpen), ReplyReceived: b2i(p.ReplyReceived), LinkClicked: b2i(p.LinkClicked),
		AttachmentOpened: b2i(p.AttachmentOpened)}
	if !p.FirstOpenSince.IsZero() {
		doc.FirstOpenSince = p.FirstOpenSince.UnixMilli()
	}
	if _, err := db.c("alert_preferences").ReplaceOne(ctx, bson.D{{Key: "owner", Value: owner}}, doc,
		options.Replace().SetUpsert(true)); err != nil {
		return fail("set alert preferences of "+owner, err)
	}
	return nil
}

// Engagements implements alerts.Store: events after the shared cursor by sequence, and the people's
// clicks, attachment opens and replies among them that their owner wants, joined to their message
// and recipient, in one aggregation.
func (db *DB) Engagements(ctx context.Context, limit int) ([]alerts.Engagement, int64, error) {
	var cur struct {
		Seq int64 `bson:"seq"`
	}
	if err := db.c("alert_cursors").FindOne(ctx, bson.D{{Key: "name", Value: engagementCursor}}).Decode(&cur); err != nil {
		return nil, 0, fail("engagement cursor", err)
	}
	res, err := aggregate[struct {
		Through []struct {
			Seq int64 `bson:"seq"`
		} `bson:"through"`
		Rows []struct {
			eventDoc `bson:",inline"`
			Owner    string `bson:"owner"`
			Subject  string `bson:"subject"`
			Email    string `bson:"email"`
		} `bson:"rows"`
	}](ctx, db.c("events"), engagementsPipeline(cur.Seq, limit))
	if err != nil {
		return nil, 0, fail("engagements", err)
	}
	if len(res) != 1 || len(res[0].Through) == 0 {
		return nil, 0, nil // nothing after the cursor ($facet answers one document, with empty lists)
	}
	var out []alerts.Engagement
	for _, r := range res[0].Rows {
		out = append(out, alerts.Engagement{Event: r.event(), Owner: r.Owner, Subject: r.Subject, Recipient: r.Email})
	}
	return out, res[0].Through[0].Seq, nil
}
