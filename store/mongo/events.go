package mongo

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mdb "go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/engage-email/engage/followed"
)

// messageDelta is what one batch adds to a message's counters.
type messageDelta struct {
	opens, uniqueOpens, clicks, uniqueClicks, attachmentOpens, replies, machineOpens, machineClicks int
	firstOpen, lastOpen                                                                             int64
}

type audienceKey struct {
	message   string
	recipient int
	what      string
}

type linkKey struct {
	message string
	link    int
}

type audienceDoc struct {
	MessageID string `bson:"message_id"`
	Recipient int    `bson:"recipient"`
	What      string `bson:"what"`
	At        int64  `bson:"at"`
}

// RecordEvents implements followed.Store in one transaction per batch: ids already stored are read
// and skipped, new events take a range of the events sequence (the engagement cursor follows it), and
// the audience collection's unique key makes "first" a fact the database decides: two instances
// claiming one key conflict, the loser's transaction is retried, and then finds the key claimed.
func (db *DB) RecordEvents(ctx context.Context, evs []followed.Event) ([]followed.FirstOpen, error) {
	if len(evs) == 0 {
		return nil, nil
	}
	var firsts []followed.FirstOpen
	err := db.tx(ctx, "record events", func(ctx context.Context) error {
		var err error
		firsts, err = db.recordEvents(ctx, evs)
		return err
	})
	if err != nil {
		return nil, err
	}
	return firsts, nil
}

type messageHead struct {
	ID         string `bson:"id"`
	Owner      string `bson:"owner"`
	Subject    string `bson:"subject"`
	Individual int64  `bson:"individual"`
}

func (db *DB) recordEvents(ctx context.Context, evs []followed.Event) ([]followed.FirstOpen, error) {
	ids := make([]string, 0, len(evs))
	seen := make(map[string]bool, len(evs))
	var msgIDs []string
	msgSeen := map[string]bool{}
	for _, ev := range evs {
		if !seen[ev.ID] {
			seen[ev.ID] = true
			ids = append(ids, ev.ID)
		}
		if !msgSeen[ev.MessageID] {
			msgSeen[ev.MessageID] = true
			msgIDs = append(msgIDs, ev.MessageID)
		}
	}
	stored, err := all[struct {
		ID string `bson:"id"`
	}](ctx, db.c("events"), bson.D{{Key: "id", Value: bson.D{{Key: "$in", Value: ids}}}})
	if err != nil {
		return nil, fmt.Errorf("stored events: %w", err)
	}
	for _, s := range stored {
		seen[s.ID] = false // a replay
	}
	heads, err := all[messageHead](ctx, db.c("messages"), bson.D{{Key: "id", Value: bson.D{{Key: "$in", Value: msgIDs}}}})
	if err != nil {
		return nil, fmt.Errorf("messages: %w", err)
	}
	infos := make(map[string]messageHead, len(heads))
	for _, h := range heads {
		infos[h.ID] = h
	}
	stopped, err := db.untracked(ctx, msgIDs)
	if err != nil {
		return nil, err
	}
	// An id twice in one batch is one event; events of a message since erased have nothing to attach to,
	// and those of a recipient who withdrew consent are not kept.
	var fresh []followed.Event
	for _, ev := range evs {
		if ev.Tracking() && (stopped[ev.MessageID][ev.Recipient] || stopped[ev.MessageID][followed.Shared]) {
			continue
		}
		if _, ok := infos[ev.MessageID]; ok && seen[ev.ID] {
			seen[ev.ID] = false
			fresh = append(fresh, ev)
		}
	}
	if len(fresh) == 0 {
		return nil, nil
	}
	last, err := db.nextSeq(ctx, "events", len(fresh))
	if err != nil {
		return nil, err
	}
	docs := make([]any, len(fresh))
	for i, ev := range fresh {
		docs[i] = eventDoc{Seq: last - int64(len(fresh)) + 1 + int64(i), ID: ev.ID, MessageID: ev.MessageID, Kind: string(ev.Kind),
			At: ev.At.UnixMilli(), Recipient: ev.Recipient, Link: ev.Link, URL: ev.URL, IP: ev.IP, UserAgent: ev.UserAgent,
			Method: ev.Method, DeviceType: string(ev.Device.Type), DeviceOS: ev.Device.OS, DeviceClient: ev.Device.Client,
			Machine: b2i(ev.Machine), Reason: ev.Reason, Rule: ev.Rule}
	}
	if _, err := db.c("events").InsertMany(ctx, docs); err != nil {
		return nil, fmt.Errorf("insert events: %w", err)
	}

	// The first event of the batch to name an audience key claims it, unless an earlier batch did.
	claims := followed.ClaimsOf(fresh)
	claimed := map[followed.AudienceKey]bool{}
	if len(claims.Keys) > 0 {
		keys := make([]audienceKey, len(claims.Keys))
		for i, k := range claims.Keys {
			keys[i] = audienceKey{k.MessageID, k.Recipient, k.What}
		}
		taken, err := all[audienceDoc](ctx, db.c("audience"), audienceFilter(keys))
		if err != nil {
			return nil, fmt.Errorf("audience: %w", err)
		}
		old := map[followed.AudienceKey]bool{}
		for _, t := range taken {
			old[followed.AudienceKey{MessageID: t.MessageID, Recipient: t.Recipient, What: t.What}] = true
		}
		var ins []any
		for _, k := range claims.Keys {
			if !old[k] {
				claimed[k] = true
				ins = append(ins, audienceDoc{MessageID: k.MessageID, Recipient: k.Recipient, What: k.What, At: claims.By[k].At.UnixMilli()})
			}
		}
		if err := insertMany(ctx, db.c("audience"), ins); err != nil {
			return nil, fmt.Errorf("insert audience: %w", err)
		}
	}
	tally := followed.TallyOf(fresh, claims, claimed)
	recipients, err := db.firstOpenRecipients(ctx, tally.FirstOpens, infos)
	if err != nil {
		return nil, err
	}
	firsts := make([]followed.FirstOpen, 0, len(tally.FirstOpens))
	for _, ev := range tally.FirstOpens {
		info := infos[ev.MessageID]
		fo := followed.FirstOpen{MessageID: ev.MessageID, Owner: info.Owner, Subject: info.Subject,
			Recipient: ev.Recipient, At: ev.At, Device: ev.Device}
		if rs := recipients[ev.MessageID]; ev.Recipient >= 0 && ev.Recipient < len(rs) {
			fo.Email = rs[ev.Recipient]
		}
		firsts = append(firsts, fo)
	}
	// Every message with a fresh tracking event has a counter that moves, a real write: an erasure or a
	// withdrawal of consent writes the message's guard, so one that committed after the untracked read
	// above makes this transaction conflict and retry, and then see it.
	models := make([]mdb.WriteModel, 0, len(tally.Messages))
	for _, dl := range tally.Messages {
		models = append(models, mdb.NewUpdateOneModel().SetFilter(bson.D{{Key: "id", Value: dl.MessageID}}).SetUpdate(counterUpdate(deltaOf(dl))))
	}
	if _, err := db.c("messages").BulkWrite(ctx, models); err != nil {
		return nil, fmt.Errorf("counters of %d messages: %w", len(models), err)
	}
	if len(tally.Links) > 0 {
		models = models[:0]
		for _, l := range tally.Links {
			models = append(models, mdb.NewUpdateOneModel().SetFilter(bson.D{{Key: "message_id", Value: l.MessageID}, {Key: "idx", Value: l.Link}}).
				SetUpdate(bson.D{{Key: "$inc", Value: bson.D{{Key: "clicks", Value: l.Clicks}, {Key: "unique_clicks", Value: l.UniqueClicks}}}}))
		}
		if _, err := db.c("links").BulkWrite(ctx, models); err != nil {
			return nil, fmt.Errorf("clicks of %d links: %w", len(models), err)
		}
	}
	return firsts, nil
}

// deltaOf is a tally's message delta in the form the counter update is built from.
func deltaOf(dl followed.MessageDelta) messageDelta {
	ms := func(t time.Time) int64 {
		if t.IsZero() {
			return 0
		}
		return t.UnixMilli()
	}
	return messageDelta{opens: dl.Opens, uniqueOpens: dl.UniqueOpens, clicks: dl.Clicks, uniqueClicks: dl.UniqueClicks,
		attachmentOpens: dl.AttachmentOpens, replies: dl.Replies, machineOpens: dl.MachineOpens, machineClicks: dl.MachineClicks,
		firstOpen: ms(dl.FirstOpen), lastOpen: ms(dl.LastOpen)}
}

// firstOpenRecipients returns the addresses of the individual messages opened for the first time in
// this batch, rare once a message is read.
func (db *DB) firstOpenRecipients(ctx context.Context, opens []followed.Event, infos map[string]messageHead) (map[string][]string, error) {
	var ids []string
	for _, ev := range opens {
		if infos[ev.MessageID].Individual != 0 {
			ids = append(ids, ev.MessageID)
		}
	}
	out := map[string][]string{}
	if len(ids) == 0 {
		return out, nil
	}
	rs, err := all[recipientDoc](ctx, db.c("recipients"), bson.D{{Key: "message_id", Value: bson.D{{Key: "$in", Value: ids}}}}, byIdx)
	if err != nil {
		return nil, fmt.Errorf("recipients: %w", err)
	}
	for _, r := range rs {
		out[r.MessageID] = append(out[r.MessageID], r.Email)
	}
	return out, nil
}

// Summary implements followed.Store with two aggregations: the sums, then the middle one or two
// times to first open.
func (db *DB) Summary(ctx context.Context, q followed.SummaryQuery) (followed.Summary, error) {
	var s followed.Summary
	rows, err := aggregate[struct {
		Followed        int   `bson:"followed"`
		Opened          int   `bson:"opened"`
		Clicked         int   `bson:"clicked"`
		Replied         int   `bson:"replied"`
		Opens           int   `bson:"opens"`
		Clicks          int   `bson:"clicks"`
		AttachmentOpens int   `bson:"attachment_opens"`
		Replies         int   `bson:"replies"`
		FirstOpened     int64 `bson:"first_opened"`
	}](ctx, db.c("messages"), summaryPipeline(q))
	if err != nil {
		return s, fail("summary", err)
	}
	if len(rows) == 0 {
		return s, nil
	}
	r := rows[0]
	s = followed.Summary{FollowedEmails: r.Followed, OpenedEmails: r.Opened, ClickedEmails: r.Clicked, RepliedEmails: r.Replied,
		Opens: r.Opens, Clicks: r.Clicks, AttachmentOpens: r.AttachmentOpens, Replies: r.Replies}
	if r.FirstOpened == 0 {
		return s, nil
	}
	mid, err := aggregate[struct {
		D int64 `bson:"d"`
	}](ctx, db.c("messages"), medianPipeline(q, r.FirstOpened))
	if err != nil {
		return s, fail("summary median", err)
	}
	var sum int64
	for _, m := range mid {
		sum += m.D
	}
	if len(mid) > 0 {
		s.MedianTimeToFirstOpen = time.Duration(sum/int64(len(mid))) * time.Millisecond
	}
	return s, nil
}
