package mongo

import (
	"bytes"
	"context"
	"fmt"
	"regexp"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/engage-email/engage/consent"
)

// InboundEraser returns the eraser of inbound mail's collections, for consent.Options.Erasers.
func (db *DB) InboundEraser() consent.Eraser { return inboundEraser{db} }

type inboundEraser struct{ db *DB }

// queuedDoc is the part of an inbound_queue row that erasure reads.
type queuedDoc struct {
	ID         string `bson:"id"`
	Kind       string `bson:"kind"`
	Mailbox    string `bson:"mailbox"`
	Raw        []byte `bson:"raw"`
	Status     string `bson:"status"`
	EnqueuedAt int64  `bson:"enqueued_at"`
}

type streakDoc struct {
	Email  string `bson:"email"`
	Streak int64  `bson:"streak"`
	LastAt int64  `bson:"last_at"`
}

// byEmail matches an address in any case, as the SQLite eraser's lower(email) = ? does.
func byEmail(email string) bson.D {
	return bson.D{{Key: "email", Value: bson.D{{Key: "$regex", Value: "^" + regexp.QuoteMeta(email) + "$"}, {Key: "$options", Value: "i"}}}}
}

// queuedNaming lists the queued raw mail that names email. Raw mail is bytes, which a query cannot
// search case-insensitively, so the scan is here; the queue holds recent mail only (it is purged).
func (e inboundEraser) queuedNaming(ctx context.Context, email string) ([]queuedDoc, error) {
	docs, err := all[queuedDoc](ctx, e.db.c("inbound_queue"), bson.D{{Key: "raw", Value: bson.D{{Key: "$ne", Value: nil}}}},
		options.Find().SetSort(bson.D{{Key: "enqueued_at", Value: 1}}))
	if err != nil {
		return nil, err
	}
	needle := bytes.ToLower([]byte(email))
	var out []queuedDoc
	for _, x := range docs {
		if bytes.Contains(bytes.ToLower(x.Raw), needle) {
			out = append(out, x)
		}
	}
	return out, nil
}

// ForgetRecipient implements consent.Eraser; queued mail naming the address is dropped whatever its state.
func (e inboundEraser) ForgetRecipient(ctx context.Context, email string) ([]consent.Count, error) {
	var counts []consent.Count
	err := e.db.tx(ctx, "forget recipient in inbound", func(ctx context.Context) error {
		counts = counts[:0]
		for _, c := range []struct{ what, coll string }{{"bounce streaks", "inbound_bounce_streaks"}, {"soft bounces", "inbound_soft_bounces"}} {
			res, err := e.db.c(c.coll).DeleteMany(ctx, byEmail(email))
			if err != nil {
				return err
			}
			counts = append(counts, consent.Count{What: c.what, N: int(res.DeletedCount)})
		}
		queued, err := e.queuedNaming(ctx, email)
		if err != nil {
			return err
		}
		ids := make([]string, len(queued))
		for i, q := range queued {
			ids[i] = q.ID
		}
		n := 0
		if len(ids) > 0 {
			res, err := e.db.c("inbound_queue").DeleteMany(ctx, bson.D{{Key: "id", Value: bson.D{{Key: "$in", Value: ids}}}})
			if err != nil {
				return err
			}
			n = int(res.DeletedCount)
		}
		counts = append(counts, consent.Count{What: "inbound mail", N: n})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return counts, nil
}

// RecipientData implements consent.Eraser: the address's bounce streak and the queued mail naming it.
func (e inboundEraser) RecipientData(ctx context.Context, email string) ([]consent.Record, error) {
	streaks, err := all[streakDoc](ctx, e.db.c("inbound_bounce_streaks"), byEmail(email))
	if err != nil {
		return nil, fail("recipient data in inbound", err)
	}
	var out []consent.Record
	for _, s := range streaks {
		out = append(out, consent.Record{Source: "inbound", Kind: "bounce streak", ID: s.Email, At: ms(s.LastAt),
			Fields: map[string]string{"soft bounces in a row": fmt.Sprint(s.Streak)}})
	}
	queued, err := e.queuedNaming(ctx, email)
	if err != nil {
		return nil, fail("recipient data in inbound", err)
	}
	for _, q := range queued {
		out = append(out, consent.Record{Source: "inbound", Kind: "inbound mail", ID: q.ID, At: ms(q.EnqueuedAt),
			Fields: map[string]string{"kind": q.Kind, "mailbox": q.Mailbox, "status": q.Status}})
	}
	return out, nil
}
