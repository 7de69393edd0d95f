package mongo

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/engage-email/engage/followed"
)

// unannouncedFirstOpensPipeline reads, as the embedded store does, a person's opens at or after since
// (index: at) that claimed their recipient's audience 'open' entry (a relabel moves the entry to the
// person's next open or deletes it, so a machine's open never matches) and have no alert under the key
// alerts builds (alerts.FirstOpenKey): the lowest id of each recipient's claiming millisecond, oldest
// first, with the owner, subject and (individual render) address the alert names.
func unannouncedFirstOpensPipeline(since int64, limit int) bson.A {
	eq := func(field, v string) d { return d{{Key: "$eq", Value: a{field, v}}} }
	return a{
		d{{Key: "$match", Value: d{{Key: "at", Value: d{{Key: "$gte", Value: since}}}, {Key: "kind", Value: string(followed.Opened)},
			{Key: "machine", Value: int64(0)}}}},
		d{{Key: "$lookup", Value: d{{Key: "from", Value: "audience"}, {Key: "localField", Value: "message_id"},
			{Key: "foreignField", Value: "message_id"}, {Key: "let", Value: d{{Key: "r", Value: "$recipient"}, {Key: "at", Value: "$at"}}},
			{Key: "as", Value: "claim"}, {Key: "pipeline", Value: a{
				d{{Key: "$match", Value: d{{Key: "what", Value: "open"}, {Key: "$expr", Value: d{{Key: "$and", Value: a{
					eq("$recipient", "$$r"), eq("$at", "$$at")}}}}}}},
				d{{Key: "$project", Value: d{{Key: "_id", Value: 1}}}},
			}}}}},
		d{{Key: "$match", Value: d{{Key: "claim", Value: d{{Key: "$ne", Value: a{}}}}}}},
		d{{Key: "$set", Value: d{{Key: "key", Value: d{{Key: "$concat", Value: a{"first_open:", "$message_id", ":",
			d{{Key: "$toString", Value: "$recipient"}}}}}}}}},
		d{{Key: "$lookup", Value: d{{Key: "from", Value: "alerts"}, {Key: "localField", Value: "key"}, {Key: "foreignField", Value: "key"},
			{Key: "as", Value: "alert"}, {Key: "pipeline", Value: a{d{{Key: "$project", Value: d{{Key: "_id", Value: 1}}}}}}}}},
		d{{Key: "$match", Value: d{{Key: "alert", Value: a{}}}}},
		d{{Key: "$sort", Value: d{{Key: "at", Value: 1}, {Key: "message_id", Value: 1}, {Key: "recipient", Value: 1}, {Key: "id", Value: 1}}}},
		d{{Key: "$group", Value: d{{Key: "_id", Value: d{{Key: "message_id", Value: "$message_id"}, {Key: "recipient", Value: "$recipient"}}},
			{Key: "ev", Value: d{{Key: "$first", Value: "$$ROOT"}}}}}},
		d{{Key: "$replaceWith", Value: "$ev"}},
		d{{Key: "$sort", Value: d{{Key: "at", Value: 1}, {Key: "message_id", Value: 1}, {Key: "recipient", Value: 1}}}},
		d{{Key: "$limit", Value: int64(limit)}},
		d{{Key: "$lookup", Value: d{{Key: "from", Value: "messages"}, {Key: "localField", Value: "message_id"},
			{Key: "foreignField", Value: "id"}, {Key: "as", Value: "m"}, {Key: "pipeline", Value: a{
				d{{Key: "$project", Value: d{{Key: "_id", Value: 0}, {Key: "owner", Value: 1}, {Key: "subject", Value: 1}, {Key: "individual", Value: 1}}}}}}}}},
		d{{Key: "$unwind", Value: "$m"}},
		d{{Key: "$lookup", Value: d{{Key: "from", Value: "recipients"}, {Key: "let", Value: d{{Key: "mid", Value: "$message_id"}, {Key: "idx", Value: "$recipient"}}},
			{Key: "as", Value: "r"}, {Key: "pipeline", Value: a{
				d{{Key: "$match", Value: d{{Key: "$expr", Value: d{{Key: "$and", Value: a{eq("$message_id", "$$mid"), eq("$idx", "$$idx")}}}}}}},
				d{{Key: "$project", Value: d{{Key: "_id", Value: 0}, {Key: "email", Value: 1}}}},
			}}}}},
		d{{Key: "$project", Value: d{
			{Key: "_id", Value: 0}, {Key: "message_id", Value: 1}, {Key: "recipient", Value: 1}, {Key: "at", Value: 1},
			{Key: "device_type", Value: 1}, {Key: "device_os", Value: 1}, {Key: "device_client", Value: 1},
			{Key: "owner", Value: "$m.owner"}, {Key: "subject", Value: "$m.subject"},
			{Key: "email", Value: d{{Key: "$cond", Value: a{d{{Key: "$ne", Value: a{"$m.individual", int64(0)}}},
				d{{Key: "$ifNull", Value: a{d{{Key: "$first", Value: "$r.email"}}, ""}}}, ""}}}},
		}}},
	}
}

// UnannouncedFirstOpens implements alerts.Store with one aggregation over the events.
func (db *DB) UnannouncedFirstOpens(ctx context.Context, since time.Time, limit int) ([]followed.FirstOpen, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("mongo: unannounced first opens: %w: limit %d", followed.ErrBadInput, limit)
	}
	rows, err := aggregate[struct {
		MessageID    string `bson:"message_id"`
		Recipient    int    `bson:"recipient"`
		At           int64  `bson:"at"`
		DeviceType   string `bson:"device_type"`
		DeviceOS     string `bson:"device_os"`
		DeviceClient string `bson:"device_client"`
		Owner        string `bson:"owner"`
		Subject      string `bson:"subject"`
		Email        string `bson:"email"`
	}](ctx, db.c("events"), unannouncedFirstOpensPipeline(since.UnixMilli(), limit))
	if err != nil {
		return nil, fail("unannounced first opens", err)
	}
	out := make([]followed.FirstOpen, len(rows))
	for i, r := range rows {
		out[i] = followed.FirstOpen{MessageID: r.MessageID, Owner: r.Owner, Subject: r.Subject, Recipient: r.Recipient, Email: r.Email,
			At: ms(r.At), Device: followed.Device{Type: followed.DeviceType(r.DeviceType), OS: r.DeviceOS, Client: r.DeviceClient}}
	}
	return out, nil
}
