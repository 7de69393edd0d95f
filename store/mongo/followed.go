package mongo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	mdb "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/engage-email/engage/followed"
)

var _ followed.Store = (*DB)(nil)

// messageDoc is a row of messages; times are Unix milliseconds and flags 0 or 1, as in the embedded store.
type messageDoc struct {
	ID                string `bson:"id"`
	Owner             string `bson:"owner"`
	Subject           string `bson:"subject"`
	HTML              string `bson:"html,omitempty"`
	Individual        int64  `bson:"individual"`
	Following         int64  `bson:"following"`
	NotFollowedReason string `bson:"not_followed_reason"`
	TemplateID        string `bson:"template_id"`
	Warnings          string `bson:"warnings"`
	CreatedAt         int64  `bson:"created_at"`
	Opens             int    `bson:"opens"`
	UniqueOpens       int    `bson:"unique_opens"`
	FirstOpenedAt     *int64 `bson:"first_opened_at"`
	LastOpenedAt      *int64 `bson:"last_opened_at"`
	Clicks            int    `bson:"clicks"`
	UniqueClicks      int    `bson:"unique_clicks"`
	AttachmentOpens   int    `bson:"attachment_opens"`
	Replies           int    `bson:"replies"`
	MachineOpens      int    `bson:"machine_opens"`
	MachineClicks     int    `bson:"machine_clicks"`
}

func (m messageDoc) message() (followed.Message, error) {
	out := followed.Message{ID: m.ID, Owner: m.Owner, Subject: m.Subject, HTML: m.HTML, Individual: m.Individual != 0,
		Following: m.Following != 0, NotFollowedReason: m.NotFollowedReason, TemplateID: m.TemplateID, CreatedAt: ms(m.CreatedAt),
		Counters: followed.Counters{Opens: m.Opens, UniqueOpens: m.UniqueOpens, FirstOpenedAt: fromMillis(m.FirstOpenedAt),
			LastOpenedAt: fromMillis(m.LastOpenedAt), Clicks: m.Clicks, UniqueClicks: m.UniqueClicks, AttachmentOpens: m.AttachmentOpens,
			Replies: m.Replies, MachineOpens: m.MachineOpens, MachineClicks: m.MachineClicks}}
	if err := json.Unmarshal([]byte(m.Warnings), &out.Warnings); err != nil {
		return out, fmt.Errorf("warnings of %s: %w", m.ID, err)
	}
	return out, nil
}

type recipientDoc struct {
	MessageID string `bson:"message_id"`
	Idx       int    `bson:"idx"`
	Email     string `bson:"email"`
	Name      string `bson:"name"`
	Kind      string `bson:"kind"`
}

type renderDoc struct {
	MessageID string `bson:"message_id"`
	Idx       int    `bson:"idx"`
	Recipient int    `bson:"recipient"`
	Targets   string `bson:"targets"`
	HTML      string `bson:"html"`
	Tracked   int64  `bson:"tracked"`
}

type linkDoc struct {
	MessageID    string `bson:"message_id"`
	Idx          int    `bson:"idx"`
	URL          string `bson:"url"`
	Clicks       int    `bson:"clicks"`
	UniqueClicks int    `bson:"unique_clicks"`
}

func renderDocs(m followed.Message) []any {
	out := make([]any, 0, len(m.Renders))
	for _, r := range m.Renders {
		targets, _ := json.Marshal(nonNil(r.Targets))
		out = append(out, renderDoc{MessageID: m.ID, Idx: r.Index, Recipient: r.Recipient, Targets: string(targets), HTML: r.HTML, Tracked: b2i(r.Tracked)})
	}
	return out
}

func insertMany(ctx context.Context, coll *mdb.Collection, docs []any) error {
	if len(docs) == 0 {
		return nil
	}
	_, err := coll.InsertMany(ctx, docs)
	return err
}

// CreateMessage implements followed.Store: the message, its recipients, renders and links in one transaction.
func (db *DB) CreateMessage(ctx context.Context, m followed.Message) error {
	warnings, err := json.Marshal(nonNil(m.Warnings))
	if err != nil {
		return fmt.Errorf("mongo: create message %s: %w", m.ID, err)
	}
	return db.tx(ctx, "create message "+m.ID, func(ctx context.Context) error {
		if _, err := db.c("messages").InsertOne(ctx, messageDoc{ID: m.ID, Owner: m.Owner, Subject: m.Subject, HTML: m.HTML,
			Individual: b2i(m.Individual), Following: b2i(m.Following), NotFollowedReason: m.NotFollowedReason,
			TemplateID: m.TemplateID, Warnings: string(warnings), CreatedAt: m.CreatedAt.UnixMilli()}); err != nil {
			return err
		}
		rs := make([]any, 0, len(m.Recipients))
		for i, r := range m.Recipients {
			rs = append(rs, recipientDoc{MessageID: m.ID, Idx: i, Email: r.Email, Name: r.Name, Kind: string(r.Kind)})
		}
		ls := make([]any, 0, len(m.Links))
		for _, l := range m.Links {
			ls = append(ls, linkDoc{MessageID: m.ID, Idx: l.Index, URL: l.URL})
		}
		return errors.Join(insertMany(ctx, db.c("recipients"), rs), insertMany(ctx, db.c("renders"), renderDocs(m)),
			insertMany(ctx, db.c("links"), ls))
	})
}

var byIdx = options.Find().SetSort(bson.D{{Key: "idx", Value: 1}})

// Message implements followed.Store.
func (db *DB) Message(ctx context.Context, id string) (followed.Message, error) {
	doc, err := one[messageDoc](ctx, db.c("messages"), bson.D{{Key: "id", Value: id}}, "message "+id, followed.ErrNotFound)
	if err != nil {
		return followed.Message{}, err
	}
	m, err := doc.message()
	if err != nil {
		return m, fmt.Errorf("mongo: message %s: %w", id, err)
	}
	if err := db.fill(ctx, []*followed.Message{&m}); err != nil {
		return m, err
	}
	if m.Renders, err = db.Renders(ctx, id); err != nil {
		return m, err
	}
	return m, nil
}

// fill loads the recipients and links of ms, two queries whatever their number.
func (db *DB) fill(ctx context.Context, ms []*followed.Message) error {
	if len(ms) == 0 {
		return nil
	}
	ids := make([]string, len(ms))
	byID := make(map[string]*followed.Message, len(ms))
	for i, m := range ms {
		ids[i], byID[m.ID] = m.ID, m
	}
	in := bson.D{{Key: "message_id", Value: bson.D{{Key: "$in", Value: ids}}}}
	rs, err := all[recipientDoc](ctx, db.c("recipients"), in, byIdx)
	if err != nil {
		return fail("recipients", err)
	}
	for _, r := range rs {
		m := byID[r.MessageID]
		m.Recipients = append(m.Recipients, followed.Recipient{Email: r.Email, Name: r.Name, Kind: followed.RecipientKind(r.Kind)})
	}
	ls, err := all[linkDoc](ctx, db.c("links"), in, byIdx)
	if err != nil {
		return fail("links", err)
	}
	for _, l := range ls {
		m := byID[l.MessageID]
		m.Links = append(m.Links, followed.Link{Index: l.Idx, URL: l.URL, Clicks: l.Clicks, UniqueClicks: l.UniqueClicks})
	}
	return nil
}

// Renders implements followed.Store.
func (db *DB) Renders(ctx context.Context, messageID string) ([]followed.Render, error) {
	docs, err := all[renderDoc](ctx, db.c("renders"), bson.D{{Key: "message_id", Value: messageID}}, byIdx)
	if err != nil {
		return nil, fail("renders of "+messageID, err)
	}
	var out []followed.Render
	for _, r := range docs {
		fr := followed.Render{Index: r.Idx, Recipient: r.Recipient, HTML: r.HTML, Tracked: r.Tracked != 0}
		if err := json.Unmarshal([]byte(r.Targets), &fr.Targets); err != nil {
			return nil, fmt.Errorf("mongo: renders of %s: targets: %w", messageID, err)
		}
		out = append(out, fr)
	}
	return out, nil
}

// UpdateRenders implements followed.Store: renders are replaced whole; a link keeps its clicks while
// its URL is unchanged; links beyond the new list go; the message's guard is written, as a claim of its
// job does, so the send check and a claim never both commit.
func (db *DB) UpdateRenders(ctx context.Context, m followed.Message) error {
	warnings, err := json.Marshal(nonNil(m.Warnings))
	if err != nil {
		return fmt.Errorf("mongo: update renders of %s: %w", m.ID, err)
	}
	return db.tx(ctx, "update renders of "+m.ID, func(ctx context.Context) error {
		started, err := db.sendStarted(ctx, m.ID)
		if err != nil {
			return err
		}
		if started {
			return followed.ErrSendStarted
		}
		// The guard makes this a write even when nothing else changes, so a claim of the job committed
		// after the read above conflicts with it and the retry sees the send started.
		res, err := db.c("messages").UpdateOne(ctx, bson.D{{Key: "id", Value: m.ID}}, rendersUpdate(m, string(warnings)))
		if err != nil {
			return err
		}
		if res.MatchedCount == 0 {
			return followed.ErrNotFound
		}
		if _, err := db.c("renders").DeleteMany(ctx, bson.D{{Key: "message_id", Value: m.ID}}); err != nil {
			return err
		}
		if err := insertMany(ctx, db.c("renders"), renderDocs(m)); err != nil {
			return err
		}
		for _, l := range m.Links {
			key := bson.D{{Key: "message_id", Value: m.ID}, {Key: "idx", Value: l.Index}}
			// A link whose URL changed at an index is a different link: its counters start again.
			if _, err := db.c("links").UpdateOne(ctx, append(key, bson.E{Key: "url", Value: bson.D{{Key: "$ne", Value: l.URL}}}),
				bson.D{{Key: "$set", Value: bson.D{{Key: "url", Value: l.URL}, {Key: "clicks", Value: 0}, {Key: "unique_clicks", Value: 0}}}}); err != nil {
				return err
			}
			if _, err := db.c("links").UpdateOne(ctx, key, bson.D{{Key: "$setOnInsert", Value: bson.D{{Key: "url", Value: l.URL},
				{Key: "clicks", Value: 0}, {Key: "unique_clicks", Value: 0}}}}, options.UpdateOne().SetUpsert(true)); err != nil {
				return err
			}
		}
		_, err = db.c("links").DeleteMany(ctx, bson.D{{Key: "message_id", Value: m.ID}, {Key: "idx", Value: bson.D{{Key: "$gte", Value: len(m.Links)}}}})
		return err
	})
}

// Messages implements followed.Store with one aggregation (see messagesPipeline); listed messages
// carry recipients, links and counters, not renders.
func (db *DB) Messages(ctx context.Context, q followed.MessageQuery) ([]followed.Message, error) {
	docs, err := aggregate[messageDoc](ctx, db.c("messages"), messagesPipeline(q))
	if err != nil {
		return nil, fail("list messages", err)
	}
	out := make([]followed.Message, 0, len(docs))
	for _, doc := range docs {
		m, err := doc.message()
		if err != nil {
			return nil, fmt.Errorf("mongo: list messages: %w", err)
		}
		out = append(out, m)
	}
	ptrs := make([]*followed.Message, len(out))
	for i := range out {
		ptrs[i] = &out[i]
	}
	if err := db.fill(ctx, ptrs); err != nil {
		return nil, err
	}
	return out, nil
}

// eventDoc is a row of events.
type eventDoc struct {
	Seq          int64  `bson:"seq"`
	ID           string `bson:"id"`
	MessageID    string `bson:"message_id"`
	Kind         string `bson:"kind"`
	At           int64  `bson:"at"`
	Recipient    int    `bson:"recipient"`
	Link         int    `bson:"link"`
	URL          string `bson:"url"`
	IP           string `bson:"ip"`
	UserAgent    string `bson:"user_agent"`
	Method       string `bson:"method"`
	DeviceType   string `bson:"device_type"`
	DeviceOS     string `bson:"device_os"`
	DeviceClient string `bson:"device_client"`
	Machine      int64  `bson:"machine"`
	Reason       string `bson:"reason"`
	Rule         string `bson:"rule"`
}

func (e eventDoc) event() followed.Event {
	return followed.Event{ID: e.ID, MessageID: e.MessageID, Kind: followed.EventKind(e.Kind), At: ms(e.At), Recipient: e.Recipient,
		Link: e.Link, URL: e.URL, IP: e.IP, UserAgent: e.UserAgent, Method: e.Method,
		Device:  followed.Device{Type: followed.DeviceType(e.DeviceType), OS: e.DeviceOS, Client: e.DeviceClient},
		Machine: e.Machine != 0, Reason: e.Reason, Rule: e.Rule}
}

// Events implements followed.Store.
func (db *DB) Events(ctx context.Context, q followed.EventQuery) ([]followed.Event, error) {
	docs, err := all[eventDoc](ctx, db.c("events"), eventsFilter(q), options.Find().
		SetSort(bson.D{{Key: "at", Value: -1}, {Key: "id", Value: -1}}).SetLimit(int64(q.Limit)))
	if err != nil {
		return nil, fail("events of "+q.MessageID, err)
	}
	var out []followed.Event
	for _, doc := range docs {
		out = append(out, doc.event())
	}
	return out, nil
}
