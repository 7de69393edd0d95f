package mongo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mdb "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/engage-email/engage/delivery"
	"github.com/engage-email/engage/followed"
)

var (
	_ delivery.Store       = (*DB)(nil)
	_ delivery.OutboxStore = (*DB)(nil)
)

type jobDoc struct {
	MessageID   string `bson:"message_id"`
	Owner       string `bson:"owner"`
	Status      string `bson:"status"`
	ScheduledAt *int64 `bson:"scheduled_at"`
	DueAt       int64  `bson:"due_at"`
	Attempts    int    `bson:"attempts"`
	Reason      string `bson:"reason"`
	LeaseOwner  string `bson:"lease_owner"`
	LeaseUntil  int64  `bson:"lease_until"`
	CreatedAt   int64  `bson:"created_at"`
	SentAt      *int64 `bson:"sent_at"`
}

func (x jobDoc) job() delivery.Job {
	j := delivery.Job{MessageID: x.MessageID, Owner: x.Owner, Status: delivery.Status(x.Status), ScheduledAt: fromMillis(x.ScheduledAt),
		DueAt: ms(x.DueAt), Attempts: x.Attempts, Reason: x.Reason, LeaseOwner: x.LeaseOwner, CreatedAt: ms(x.CreatedAt), SentAt: fromMillis(x.SentAt)}
	if x.LeaseUntil > 0 {
		j.LeaseUntil = ms(x.LeaseUntil)
	}
	return j
}

func jobDocOf(j delivery.Job) bson.D {
	until := int64(0)
	if !j.LeaseUntil.IsZero() {
		until = j.LeaseUntil.UnixMilli()
	}
	return bson.D{{Key: "message_id", Value: j.MessageID}, {Key: "owner", Value: j.Owner}, {Key: "status", Value: string(j.Status)},
		{Key: "scheduled_at", Value: millis(j.ScheduledAt)}, {Key: "due_at", Value: j.DueAt.UnixMilli()}, {Key: "attempts", Value: int64(j.Attempts)},
		{Key: "reason", Value: j.Reason}, {Key: "lease_owner", Value: j.LeaseOwner}, {Key: "lease_until", Value: until},
		{Key: "created_at", Value: j.CreatedAt.UnixMilli()}, {Key: "sent_at", Value: millis(j.SentAt)}}
}

func jobKey(messageID string) bson.D { return bson.D{{Key: "message_id", Value: messageID}} }

// CreateJob implements delivery.Store, writing the message's guard so that an Outlook send recorded
// meanwhile (which checked there was no job) conflicts with it rather than committing beside it.
func (db *DB) CreateJob(ctx context.Context, j delivery.Job) error {
	return db.tx(ctx, "create job "+j.MessageID, func(ctx context.Context) error {
		if _, err := db.guardMessage(ctx, j.MessageID); err != nil {
			return err
		}
		var old jobDoc
		err := db.c("delivery_jobs").FindOne(ctx, jobKey(j.MessageID)).Decode(&old)
		switch {
		case err == nil && old.Status != string(delivery.StatusFailed):
			return delivery.ErrJobExists
		case err != nil && !errors.Is(err, mdb.ErrNoDocuments):
			return err
		}
		_, err = db.c("delivery_jobs").ReplaceOne(ctx, jobKey(j.MessageID), jobDocOf(j), options.Replace().SetUpsert(true))
		return err
	})
}

// Job implements delivery.Store.
func (db *DB) Job(ctx context.Context, messageID string) (delivery.Job, error) {
	x, err := one[jobDoc](ctx, db.c("delivery_jobs"), jobKey(messageID), "job "+messageID, followed.ErrNotFound)
	if err != nil {
		return delivery.Job{}, err
	}
	return x.job(), nil
}

// changeScheduled runs change on the message's job, in a transaction, when it is SCHEDULED and not
// leased at now.
func (db *DB) changeScheduled(ctx context.Context, what, messageID string, now time.Time,
	change func(ctx context.Context, j *delivery.Job) error) (delivery.Job, error) {
	var j delivery.Job
	err := db.tx(ctx, what+" job "+messageID, func(ctx context.Context) error {
		var x jobDoc
		err := db.c("delivery_jobs").FindOne(ctx, jobKey(messageID)).Decode(&x)
		if errors.Is(err, mdb.ErrNoDocuments) {
			return followed.ErrNotFound
		}
		if err != nil {
			return err
		}
		j = x.job()
		if j.Status != delivery.StatusScheduled || j.LeaseUntil.After(now) {
			return fmt.Errorf("%s: %w", j.Status, delivery.ErrJobState)
		}
		return change(ctx, &j)
	})
	return j, err
}

// CancelJob implements delivery.Store.
func (db *DB) CancelJob(ctx context.Context, messageID string, now time.Time) (delivery.Job, error) {
	return db.changeScheduled(ctx, "cancel", messageID, now, func(ctx context.Context, j *delivery.Job) error {
		sent, err := db.c("render_sends").CountDocuments(ctx, bson.D{{Key: "message_id", Value: messageID}, {Key: "sent_at", Value: bson.D{{Key: "$ne", Value: nil}}}})
		if err != nil {
			return err
		}
		if sent > 0 {
			return fmt.Errorf("%d renders already sent: %w", sent, delivery.ErrJobState)
		}
		_, err = db.c("delivery_jobs").DeleteOne(ctx, jobKey(messageID))
		return err
	})
}

// RescheduleJob implements delivery.Store.
func (db *DB) RescheduleJob(ctx context.Context, messageID string, at, now time.Time) (delivery.Job, error) {
	return db.changeScheduled(ctx, "reschedule", messageID, now, func(ctx context.Context, j *delivery.Job) error {
		j.ScheduledAt, j.DueAt, j.Reason = at, at, ""
		_, err := db.c("delivery_jobs").UpdateOne(ctx, jobKey(messageID), bson.D{{Key: "$set", Value: bson.D{
			{Key: "scheduled_at", Value: at.UnixMilli()}, {Key: "due_at", Value: at.UnixMilli()}, {Key: "reason", Value: ""}}}})
		return err
	})
}

// ClaimDueJobs implements delivery.Store with one transaction per job: a FindOneAndUpdate whose
// filter (due, or a lease run out) the server checks as it takes the lease, so a job goes to one
// claimer, and a write of the message's guard, so a change that checked the send had not started
// (renders, attachments, an Outlook send) and the claim never both commit.
func (db *DB) ClaimDueJobs(ctx context.Context, instance string, now time.Time, lease time.Duration, limit int) ([]delivery.Job, error) {
	var out []delivery.Job
	opts := options.FindOneAndUpdate().SetReturnDocument(options.After)
	update := jobClaim(instance, now.Add(lease))
	for len(out) < limit {
		var x jobDoc
		found := false
		err := db.tx(ctx, "claim jobs", func(ctx context.Context) error {
			x, found = jobDoc{}, false
			err := db.c("delivery_jobs").FindOneAndUpdate(ctx, dueJobs(now), update, opts).Decode(&x)
			if errors.Is(err, mdb.ErrNoDocuments) {
				return nil
			}
			if err != nil {
				return err
			}
			found = true
			_, err = db.guardMessage(ctx, x.MessageID)
			return err
		})
		if err != nil {
			return nil, err
		}
		if !found {
			break
		}
		out = append(out, x.job())
	}
	return out, nil
}

func heldBy(instance, messageID string) bson.D {
	return bson.D{{Key: "message_id", Value: messageID}, {Key: "status", Value: string(delivery.StatusSending)}, {Key: "lease_owner", Value: instance}}
}

// FinishJob implements delivery.Store.
func (db *DB) FinishJob(ctx context.Context, instance string, j delivery.Job) error {
	res, err := db.c("delivery_jobs").UpdateOne(ctx, heldBy(instance, j.MessageID), bson.D{{Key: "$set", Value: bson.D{
		{Key: "status", Value: string(j.Status)}, {Key: "reason", Value: j.Reason}, {Key: "due_at", Value: j.DueAt.UnixMilli()},
		{Key: "sent_at", Value: millis(j.SentAt)}, {Key: "lease_owner", Value: ""}, {Key: "lease_until", Value: int64(0)}}}})
	if err != nil {
		return fail("finish job "+j.MessageID, err)
	}
	if res.MatchedCount == 0 {
		return fmt.Errorf("mongo: finish job %s: %w", j.MessageID, delivery.ErrLeaseLost)
	}
	return nil
}

type renderSendDoc struct {
	MessageID         string `bson:"message_id"`
	Render            int    `bson:"render"`
	DraftID           string `bson:"draft_id"`
	InternetMessageID string `bson:"internet_message_id"`
	ConversationID    string `bson:"conversation_id"`
	SentAt            *int64 `bson:"sent_at"`
	Files             string `bson:"files"` // JSON list of delivery.OutboxFile, as the embedded store keeps it
}

// RenderSends implements delivery.Store.
func (db *DB) RenderSends(ctx context.Context, messageID string) ([]delivery.RenderSend, error) {
	docs, err := all[renderSendDoc](ctx, db.c("render_sends"), jobKey(messageID), options.Find().SetSort(bson.D{{Key: "render", Value: 1}}))
	if err != nil {
		return nil, fail("render sends of "+messageID, err)
	}
	out := make([]delivery.RenderSend, len(docs))
	for i, x := range docs {
		out[i] = delivery.RenderSend{MessageID: x.MessageID, Render: x.Render, DraftID: x.DraftID, InternetMessageID: x.InternetMessageID,
			ConversationID: x.ConversationID, SentAt: fromMillis(x.SentAt)}
	}
	return out, nil
}

// leased runs write in a transaction if instance holds the message's job, else fails with ErrLeaseLost;
// the check writes the job, so a claim by another instance after the lease ran out conflicts with it
// rather than committing beside a draft or send recorded under the lost lease.
func (db *DB) leased(ctx context.Context, what, instance, messageID string, write func(ctx context.Context) error) error {
	return db.tx(ctx, what, func(ctx context.Context) error {
		res, err := db.c("delivery_jobs").UpdateOne(ctx, heldBy(instance, messageID), leaseWrite())
		if err != nil {
			return err
		}
		if res.MatchedCount == 0 {
			return delivery.ErrLeaseLost
		}
		return write(ctx)
	})
}

// RecordDraft implements delivery.Store; a render already sent keeps its ids.
func (db *DB) RecordDraft(ctx context.Context, instance string, r delivery.RenderSend) error {
	return db.leased(ctx, fmt.Sprintf("record draft %s/%d", r.MessageID, r.Render), instance, r.MessageID, func(ctx context.Context) error {
		key := bson.D{{Key: "message_id", Value: r.MessageID}, {Key: "render", Value: r.Render}}
		var x renderSendDoc
		err := db.c("render_sends").FindOne(ctx, key).Decode(&x)
		if err == nil && x.SentAt != nil {
			return nil
		}
		if err != nil && !errors.Is(err, mdb.ErrNoDocuments) {
			return err
		}
		_, err = db.c("render_sends").ReplaceOne(ctx, key, bson.D{{Key: "message_id", Value: r.MessageID}, {Key: "render", Value: r.Render},
			{Key: "draft_id", Value: r.DraftID}, {Key: "internet_message_id", Value: r.InternetMessageID},
			{Key: "conversation_id", Value: r.ConversationID}, {Key: "sent_at", Value: nil}}, options.Replace().SetUpsert(true))
		return err
	})
}

// MarkRenderSent implements delivery.Store.
func (db *DB) MarkRenderSent(ctx context.Context, instance, messageID string, render int, at time.Time) error {
	return db.leased(ctx, fmt.Sprintf("mark %s/%d sent", messageID, render), instance, messageID, func(ctx context.Context) error {
		res, err := db.c("render_sends").UpdateOne(ctx, bson.D{{Key: "message_id", Value: messageID}, {Key: "render", Value: render},
			{Key: "sent_at", Value: nil}}, bson.D{{Key: "$set", Value: bson.D{{Key: "sent_at", Value: at.UnixMilli()}}}})
		if err != nil {
			return err
		}
		if res.MatchedCount == 0 {
			return fmt.Errorf("render %d has no unsent draft: %w", render, delivery.ErrJobState)
		}
		return nil
	})
}

type outboxDoc struct {
	ID                string `bson:"id"`
	Sender            string `bson:"sender"`
	Recipients        string `bson:"recipients"`
	Subject           string `bson:"subject"`
	HTML              string `bson:"html"`
	Headers           string `bson:"headers"`
	InternetMessageID string `bson:"internet_message_id"`
	ConversationID    string `bson:"conversation_id"`
	CreatedAt         int64  `bson:"created_at"`
	SentAt            *int64 `bson:"sent_at"`
	Files             string `bson:"files"` // JSON list of delivery.OutboxFile, as the embedded store keeps it
}

// outboxRecipients is how an outbox entry's recipients are kept in one field, as the embedded store does.
type outboxRecipients struct {
	To  []delivery.Address `json:"to"`
	Cc  []delivery.Address `json:"cc"`
	Bcc []delivery.Address `json:"bcc"`
}

func (x outboxDoc) entry() (delivery.OutboxEntry, error) {
	e := delivery.OutboxEntry{ID: x.ID, From: x.Sender, Subject: x.Subject, HTML: x.HTML, InternetMessageID: x.InternetMessageID,
		ConversationID: x.ConversationID, CreatedAt: ms(x.CreatedAt), SentAt: fromMillis(x.SentAt)}
	var r outboxRecipients
	if err := json.Unmarshal([]byte(x.Recipients), &r); err != nil {
		return e, fmt.Errorf("recipients of %s: %w", x.ID, err)
	}
	if err := json.Unmarshal([]byte(x.Headers), &e.Headers); err != nil {
		return e, fmt.Errorf("headers of %s: %w", x.ID, err)
	}
	e.To, e.Cc, e.Bcc = r.To, r.Cc, r.Bcc
	if x.Files != "" {
		if err := json.Unmarshal([]byte(x.Files), &e.Files); err != nil {
			return e, fmt.Errorf("files of %s: %w", x.ID, err)
		}
	}
	if len(e.Files) == 0 {
		e.Files = nil
	}
	return e, nil
}

// AddOutboxDraft implements delivery.OutboxStore.
func (db *DB) AddOutboxDraft(ctx context.Context, e delivery.OutboxEntry) error {
	rcpts, err := json.Marshal(outboxRecipients{To: e.To, Cc: e.Cc, Bcc: e.Bcc})
	if err != nil {
		return fmt.Errorf("mongo: outbox draft %s: %w", e.ID, err)
	}
	headers, err := json.Marshal(e.Headers)
	if err != nil {
		return fmt.Errorf("mongo: outbox draft %s: %w", e.ID, err)
	}
	files := e.Files
	if files == nil {
		files = []delivery.OutboxFile{}
	}
	rawFiles, err := json.Marshal(files)
	if err != nil {
		return fmt.Errorf("mongo: outbox draft %s: %w", e.ID, err)
	}
	if _, err := db.c("outbox").InsertOne(ctx, outboxDoc{ID: e.ID, Sender: e.From, Recipients: string(rcpts), Subject: e.Subject, HTML: e.HTML,
		Headers: string(headers), InternetMessageID: e.InternetMessageID, ConversationID: e.ConversationID, CreatedAt: e.CreatedAt.UnixMilli(),
		Files: string(rawFiles)}); err != nil {
		return fail("outbox draft "+e.ID, err)
	}
	return nil
}

// MarkOutboxSent implements delivery.OutboxStore.
func (db *DB) MarkOutboxSent(ctx context.Context, id string, at time.Time) error {
	res, err := db.c("outbox").UpdateOne(ctx, bson.D{{Key: "id", Value: id}, {Key: "sent_at", Value: nil}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "sent_at", Value: at.UnixMilli()}}}})
	if err != nil {
		return fail("send outbox entry "+id, err)
	}
	if res.MatchedCount == 1 {
		return nil
	}
	if _, err := db.OutboxEntry(ctx, id); err != nil {
		return err
	}
	return fmt.Errorf("mongo: send outbox entry %s: already sent: %w", id, delivery.ErrJobState)
}

// OutboxEntry implements delivery.OutboxStore.
func (db *DB) OutboxEntry(ctx context.Context, id string) (delivery.OutboxEntry, error) {
	x, err := one[outboxDoc](ctx, db.c("outbox"), bson.D{{Key: "id", Value: id}}, "outbox entry "+id, followed.ErrNotFound)
	if err != nil {
		return delivery.OutboxEntry{}, err
	}
	return x.entry()
}

// OutboxEntries implements delivery.OutboxStore.
func (db *DB) OutboxEntries(ctx context.Context, q delivery.OutboxQuery) ([]delivery.OutboxEntry, error) {
	f := bson.D{{Key: "sent_at", Value: bson.D{{Key: "$ne", Value: nil}}}}
	if q.From != "" {
		f = append(f, bson.E{Key: "sender", Value: q.From})
	}
	docs, err := all[outboxDoc](ctx, db.c("outbox"), f, options.Find().SetSort(bson.D{{Key: "sent_at", Value: -1}, {Key: "id", Value: -1}}).SetLimit(int64(q.Limit)))
	if err != nil {
		return nil, fail("outbox entries", err)
	}
	out := make([]delivery.OutboxEntry, 0, len(docs))
	for _, x := range docs {
		e, err := x.entry()
		if err != nil {
			return nil, fmt.Errorf("mongo: outbox entries: %w", err)
		}
		out = append(out, e)
	}
	return out, nil
}
