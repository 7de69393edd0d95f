package mongo

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/engage-email/engage/consent"
	"github.com/engage-email/engage/followed"
)

// erasedText replaces a forgotten address wherever it appears in a message's text.
const erasedText = "[erased]"

// FollowedEraser returns the eraser of the followed messages' collections, for consent.Options.Erasers.
func (db *DB) FollowedEraser() consent.Eraser { return followedEraser{db} }

type followedEraser struct{ db *DB }

// placement is where an address sits in a message, and whether its events can be told from others'.
type placement struct {
	message  string
	idx      int
	created  int64
	subject  string
	owner    string
	name     string
	kind     string
	attached bool
	shared   bool // the message had one render for all, whose events name no recipient
}

func (db *DB) placements(ctx context.Context, email string) ([]placement, error) {
	rs, err := all[recipientDoc](ctx, db.c("recipients"), bson.D{{Key: "email", Value: email}})
	if err != nil {
		return nil, fmt.Errorf("messages to %s: %w", email, err)
	}
	var out []placement
	for _, r := range rs {
		var m messageDoc
		if err := db.c("messages").FindOne(ctx, bson.D{{Key: "id", Value: r.MessageID}},
			options.FindOne().SetProjection(bson.D{{Key: "html", Value: 0}})).Decode(&m); err != nil {
			continue // a recipient row whose message is gone holds nothing more
		}
		n, err := db.c("recipients").CountDocuments(ctx, bson.D{{Key: "message_id", Value: r.MessageID}})
		if err != nil {
			return nil, fmt.Errorf("messages to %s: %w", email, err)
		}
		out = append(out, placement{message: r.MessageID, idx: r.Idx, created: m.CreatedAt, subject: m.Subject, owner: m.Owner,
			name: r.Name, kind: r.Kind, attached: m.Individual != 0 || n == 1, shared: m.Individual == 0})
	}
	// Oldest message first, as the embedded store lists them.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && (out[j].created < out[j-1].created || out[j].created == out[j-1].created && out[j].message < out[j-1].message); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out, nil
}

// ForgetRecipient implements consent.Eraser as the embedded store does, in one transaction: the
// address's events, audience rows and individual render go; its recipient rows are anonymised; the
// address is blanked out of every text that holds it; each message's guard is written, so an event
// recorded meanwhile conflicts. Counters stay: they are sums.
func (e followedEraser) ForgetRecipient(ctx context.Context, email string) ([]consent.Count, error) {
	var counts []consent.Count
	err := e.db.tx(ctx, "forget recipient", func(ctx context.Context) error {
		ps, err := e.db.placements(ctx, email)
		if err != nil {
			return err
		}
		var events, audience, renders, recipients int64
		for _, p := range ps {
			// RecordEvents writes the counters of every message it records a tracking event for, after
			// reading untracked: writing the message here too makes the two conflict, so an event read
			// as still tracked cannot commit beside the erasure.
			if _, err := e.db.guardMessage(ctx, p.message); err != nil {
				return err
			}
			if p.attached {
				res, err := e.db.c("events").DeleteMany(ctx, ownEvents(p.message, p.idx))
				if err != nil {
					return fmt.Errorf("events of %s: %w", p.message, err)
				}
				events += res.DeletedCount
				if res, err = e.db.c("audience").DeleteMany(ctx, ownEvents(p.message, p.idx)); err != nil {
					return fmt.Errorf("audience of %s: %w", p.message, err)
				}
				audience += res.DeletedCount
				// The mail is still in their mailbox: its later opens must not bring them back.
				u := untrackedDoc{MessageID: p.message, Recipient: p.idx, Since: time.Now().UnixMilli()}
				if p.shared {
					u.Recipient = followed.Shared
				}
				if _, err := e.db.c("untracked").UpdateOne(ctx, bson.D{{Key: "message_id", Value: u.MessageID}, {Key: "recipient", Value: u.Recipient}},
					bson.D{{Key: "$setOnInsert", Value: u}}, options.UpdateOne().SetUpsert(true)); err != nil {
					return fmt.Errorf("stop tracking %s: %w", p.message, err)
				}
			}
			res, err := e.db.c("renders").UpdateMany(ctx, bson.D{{Key: "message_id", Value: p.message}, {Key: "recipient", Value: p.idx}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "html", Value: ""}}}})
			if err != nil {
				return fmt.Errorf("render of %s: %w", p.message, err)
			}
			renders += res.MatchedCount
			res, err = e.db.c("recipients").UpdateOne(ctx, bson.D{{Key: "message_id", Value: p.message}, {Key: "idx", Value: p.idx}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "email", Value: "erased-" + strconv.Itoa(p.idx) + "@erased.invalid"}, {Key: "name", Value: ""}}}})
			if err != nil {
				return fmt.Errorf("recipient of %s: %w", p.message, err)
			}
			recipients += res.MatchedCount
		}
		texts, err := e.db.blankOut(ctx, email, [][2]string{{"messages", "html"}, {"messages", "subject"}, {"renders", "html"},
			{"links", "url"}, {"events", "url"}}, consent.ReplaceAddress)
		if err != nil {
			return err
		}
		// A file name's extension is not more of the address's domain ("Quote for ann@x.com.pdf").
		names, err := e.db.blankOut(ctx, email, [][2]string{{"attachments", "name"}}, consent.ReplaceAddressInFileName)
		if err != nil {
			return err
		}
		texts += names
		counts = []consent.Count{{What: "recipients", N: int(recipients)}, {What: "events", N: int(events)},
			{What: "audience", N: int(audience)}, {What: "renders", N: int(renders)}, {What: "texts", N: texts}}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return counts, nil
}

// blankOut replaces the address, in any case, in every (collection, field) text holding it: a body may
// greet its recipient by address, and a link may carry it in its query.
func (db *DB) blankOut(ctx context.Context, email string, fields [][2]string,
	replace func(text, addr, with string) (string, int)) (int, error) {
	n := 0
	for _, cf := range fields {
		coll, field := db.c(cf[0]), cf[1]
		docs, err := all[bson.M](ctx, coll, textHolding(field, email), options.Find().SetProjection(bson.D{{Key: field, Value: 1}}))
		if err != nil {
			return n, fmt.Errorf("find %s.%s: %w", cf[0], field, err)
		}
		for _, doc := range docs {
			text, _ := doc[field].(string)
			text, k := replace(text, email, erasedText)
			if k == 0 {
				continue // only inside a longer address: someone else's
			}
			if _, err := coll.UpdateOne(ctx, idFilter(doc["_id"]), bson.D{{Key: "$set", Value: bson.D{{Key: field,
				Value: text}}}}); err != nil {
				return n, fmt.Errorf("blank %s.%s: %w", cf[0], field, err)
			}
			n++
		}
	}
	return n, nil
}

// RecipientData implements consent.Eraser: the messages sent to the address and its events.
func (e followedEraser) RecipientData(ctx context.Context, email string) ([]consent.Record, error) {
	ps, err := e.db.placements(ctx, email)
	if err != nil {
		return nil, fail("recipient data", err)
	}
	var out []consent.Record
	for _, p := range ps {
		out = append(out, consent.Record{Source: "followed", Kind: "recipient", ID: p.message, At: ms(p.created),
			Fields: map[string]string{"email": email, "name": p.name, "kind": p.kind, "subject": p.subject, "sender": p.owner}})
		if !p.attached {
			continue
		}
		evs, err := all[eventDoc](ctx, e.db.c("events"), ownEvents(p.message, p.idx), options.Find().SetSort(bson.D{{Key: "at", Value: 1}}))
		if err != nil {
			return nil, fail("recipient data: events of "+p.message, err)
		}
		for _, x := range evs {
			out = append(out, consent.Record{Source: "followed", Kind: "event", ID: x.ID, At: ms(x.At),
				Fields: map[string]string{"message": p.message, "kind": x.Kind, "url": x.URL, "ip": x.IP, "userAgent": x.UserAgent,
					"device": x.DeviceType, "os": x.DeviceOS, "client": x.DeviceClient}})
		}
	}
	return out, nil
}

// AlertsEraser returns the eraser of the alerts collection, for consent.Options.Erasers.
func (db *DB) AlertsEraser() consent.Eraser { return alertsEraser{db} }

type alertsEraser struct{ db *DB }

func exactly(email string) bson.D {
	return bson.D{{Key: "recipient", Value: bson.D{{Key: "$regex", Value: "^" + regexp.QuoteMeta(email) + "$"}, {Key: "$options", Value: "i"}}}}
}

// ForgetRecipient implements consent.Eraser: alerts stay (they are the salesperson's), without the address.
func (e alertsEraser) ForgetRecipient(ctx context.Context, email string) ([]consent.Count, error) {
	var n int
	err := e.db.tx(ctx, "forget recipient in alerts", func(ctx context.Context) error {
		res, err := e.db.c("alerts").UpdateMany(ctx, exactly(email), bson.D{{Key: "$set", Value: bson.D{{Key: "recipient", Value: ""}}}})
		if err != nil {
			return err
		}
		// Reminders carry their message's subject too, for the alert they fire.
		texts, err := e.db.blankOut(ctx, email, [][2]string{{"alerts", "subject"}, {"alerts", "url"}, {"reminders", "subject"}},
			consent.ReplaceAddress)
		n = int(res.MatchedCount) + texts
		return err
	})
	if err != nil {
		return nil, err
	}
	return []consent.Count{{What: "alerts", N: n}}, nil
}

// RecipientData implements consent.Eraser: the alerts that name the address.
func (e alertsEraser) RecipientData(ctx context.Context, email string) ([]consent.Record, error) {
	docs, err := all[alertDoc](ctx, e.db.c("alerts"), exactly(email), options.Find().SetSort(bson.D{{Key: "seq", Value: 1}}))
	if err != nil {
		return nil, fail("recipient data in alerts", err)
	}
	var out []consent.Record
	for _, x := range docs {
		out = append(out, consent.Record{Source: "alerts", Kind: "alert", ID: x.ID, At: ms(x.At),
			Fields: map[string]string{"kind": x.Kind, "owner": x.Owner, "message": x.MessageID, "subject": x.Subject, "recipient": email}})
	}
	return out, nil
}
