package mongo

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/engage-email/engage/consent"
	"github.com/engage-email/engage/delivery"
)

// DeliveryEraser returns the eraser of the delivery collections (the local outbox names each mail's
// recipients; a send's failure reason may quote one), for consent.Options.Erasers.
func (db *DB) DeliveryEraser() consent.Eraser { return deliveryEraser{db} }

type deliveryEraser struct{ db *DB }

// outboxNaming lists the outbox mails whose recipients may name email, oldest first, as the embedded
// store does; delivery.OutboxEntry.ForgetRecipient makes the match exact.
func (db *DB) outboxNaming(ctx context.Context, email string) ([]delivery.OutboxEntry, error) {
	docs, err := all[outboxDoc](ctx, db.c("outbox"), textHolding("recipients", email),
		options.Find().SetSort(bson.D{{Key: "created_at", Value: 1}, {Key: "id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("outbox mail to %s: %w", email, err)
	}
	out := make([]delivery.OutboxEntry, 0, len(docs))
	for _, x := range docs {
		e, err := x.entry()
		if err != nil {
			return nil, fmt.Errorf("outbox mail to %s: %w", email, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// ForgetRecipient implements consent.Eraser as the embedded store does, in one transaction.
func (e deliveryEraser) ForgetRecipient(ctx context.Context, email string) ([]consent.Count, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	var counts []consent.Count
	err := e.db.tx(ctx, "forget recipient in delivery", func(ctx context.Context) error {
		es, err := e.db.outboxNaming(ctx, email)
		if err != nil {
			return err
		}
		mails := 0
		for _, en := range es {
			if !en.ForgetRecipient(email) {
				continue
			}
			rcpts, err := json.Marshal(outboxRecipients{To: en.To, Cc: en.Cc, Bcc: en.Bcc})
			if err != nil {
				return fmt.Errorf("outbox mail %s: %w", en.ID, err)
			}
			if _, err := e.db.c("outbox").UpdateOne(ctx, bson.D{{Key: "id", Value: en.ID}}, bson.D{{Key: "$set",
				Value: bson.D{{Key: "recipients", Value: string(rcpts)}, {Key: "html", Value: en.HTML}}}}); err != nil {
				return fmt.Errorf("outbox mail %s: %w", en.ID, err)
			}
			mails++
		}
		texts, err := e.db.blankOut(ctx, email, [][2]string{{"outbox", "recipients"}, {"outbox", "subject"}, {"outbox", "html"},
			{"outbox", "headers"}, {"outbox", "files"}, {"delivery_jobs", "reason"}}, consent.ReplaceAddress)
		if err != nil {
			return err
		}
		counts = []consent.Count{{What: "outbox", N: mails}, {What: "delivery texts", N: texts}}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return counts, nil
}

// RecipientData implements consent.Eraser: the outbox mails sent (or drafted) to the address.
func (e deliveryEraser) RecipientData(ctx context.Context, email string) ([]consent.Record, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	es, err := e.db.outboxNaming(ctx, email)
	if err != nil {
		return nil, fail("recipient data in delivery", err)
	}
	return delivery.OutboxRecords(es, email), nil
}
