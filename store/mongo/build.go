package mongo

import (
	"regexp"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/engage-email/engage/alerts"
	"github.com/engage-email/engage/consent"
	"github.com/engage-email/engage/followed"
)

// The builders below are pure: they turn a query into the filter, update or pipeline document the
// server runs, so each is checked as golden Extended JSON without a server (build_test.go).

type d = bson.D
type e = bson.E
type a = bson.A

func idFilter(id any) bson.D { return d{{Key: "_id", Value: id}} }

func incSeq(n int) bson.D { return d{{Key: "$inc", Value: d{{Key: "seq", Value: int64(n)}}}} }

// guardField is a message field written only to make transactions conflict: snapshot reads never
// block writers, so a check of a message's send or tracking state and a change to that state, on
// other documents, could both commit unless both also write this one document.
const guardField = "guard"

// bumpGuard writes a message's guard (a real change, so the server records a write that conflicts).
func bumpGuard() bson.D { return d{{Key: "$inc", Value: d{{Key: guardField, Value: int64(1)}}}} }

// writeOnly are the fields of a collection kept only for write conflicts, left out of exports because
// the embedded store has no columns for them and needs none.
var writeOnly = map[string][]string{"messages": {guardField}, "delivery_jobs": {"lease_writes"}}

// exportProjection leaves out of a table's export what the embedded store would have no column for.
func exportProjection(table string) bson.D {
	p := d{{Key: "_id", Value: 0}}
	for _, f := range writeOnly[table] {
		p = append(p, e{Key: f, Value: 0})
	}
	return p
}

// rendersUpdate sets what new renders change on their message and writes its guard, so the update is a
// write that a concurrent claim of the message's job conflicts with even when nothing else changes.
func rendersUpdate(m followed.Message, warnings string) bson.D {
	return append(d{{Key: "$set", Value: d{{Key: "following", Value: b2i(m.Following)},
		{Key: "not_followed_reason", Value: m.NotFollowedReason}, {Key: "warnings", Value: warnings}}}}, bumpGuard()...)
}

// newestFirst pages a listing ordered by (field DESC, id DESC) after a cursor.
func newestFirst(field string, c *followed.Cursor) bson.D {
	at := c.At.UnixMilli()
	return d{{Key: "$or", Value: a{
		d{{Key: field, Value: d{{Key: "$lt", Value: at}}}},
		d{{Key: field, Value: at}, {Key: "id", Value: d{{Key: "$lt", Value: c.ID}}}},
	}}}
}

// contains matches text holding s in any case, as the embedded store's LIKE '%s%' does.
func contains(s string) bson.D {
	return d{{Key: "$regex", Value: regexp.QuoteMeta(s)}, {Key: "$options", Value: "i"}}
}

// messagesFilter selects a listing's messages by owner, creation time, following and cursor; a search
// is matched later in messagesPipeline, because it needs the recipients.
func messagesFilter(q followed.MessageQuery) bson.D {
	f := d{}
	if q.Owner != "" {
		f = append(f, e{Key: "owner", Value: q.Owner})
	}
	if r := createdRange(q.From, q.To); r != nil {
		f = append(f, e{Key: "created_at", Value: r})
	}
	if q.Following != nil {
		f = append(f, e{Key: "following", Value: b2i(*q.Following)})
	}
	if q.After != nil {
		f = append(f, newestFirst("created_at", q.After)...)
	}
	return f
}

// messagesPipeline lists a page of messages newest first; a search looks up, message by message as the
// sorted listing streams past, one recipient whose address holds the text, as the embedded store's
// EXISTS does, so no list of every matching recipient's message is gathered (which could pass 16 MB).
func messagesPipeline(q followed.MessageQuery) bson.A {
	p := a{
		d{{Key: "$match", Value: messagesFilter(q)}},
		d{{Key: "$sort", Value: d{{Key: "created_at", Value: -1}, {Key: "id", Value: -1}}}},
	}
	hidden := d{{Key: "html", Value: 0}}
	if q.Search != "" {
		p = append(p,
			d{{Key: "$lookup", Value: d{{Key: "from", Value: "recipients"}, {Key: "localField", Value: "id"},
				{Key: "foreignField", Value: "message_id"}, {Key: "as", Value: "hit"}, {Key: "pipeline", Value: a{
					d{{Key: "$match", Value: d{{Key: "email", Value: contains(q.Search)}}}},
					d{{Key: "$limit", Value: int64(1)}},
					d{{Key: "$project", Value: d{{Key: "_id", Value: 1}}}},
				}}}}},
			d{{Key: "$match", Value: d{{Key: "$or", Value: a{
				d{{Key: "subject", Value: contains(q.Search)}},
				d{{Key: "hit.0", Value: d{{Key: "$exists", Value: true}}}},
			}}}}},
		)
		hidden = append(hidden, e{Key: "hit", Value: 0})
	}
	if q.Limit > 0 {
		p = append(p, d{{Key: "$limit", Value: int64(q.Limit)}})
	}
	return append(p, d{{Key: "$project", Value: hidden}})
}

func createdRange(from, to time.Time) bson.D {
	var r d
	if !from.IsZero() {
		r = append(r, e{Key: "$gte", Value: from.UnixMilli()})
	}
	if !to.IsZero() {
		r = append(r, e{Key: "$lt", Value: to.UnixMilli()})
	}
	return r
}

// eventsFilter selects a page of a message's events, newest first.
func eventsFilter(q followed.EventQuery) bson.D {
	f := d{{Key: "message_id", Value: q.MessageID}}
	if q.After != nil {
		f = append(f, newestFirst("at", q.After)...)
	}
	return f
}

// summaryMatch selects the followed messages a summary covers.
func summaryMatch(q followed.SummaryQuery) bson.D {
	f := d{{Key: "following", Value: int64(1)}}
	if q.Owner != "" {
		f = append(f, e{Key: "owner", Value: q.Owner})
	}
	if r := createdRange(q.From, q.To); r != nil {
		f = append(f, e{Key: "created_at", Value: r})
	}
	return f
}

func countIf(cond any) bson.D {
	return d{{Key: "$sum", Value: d{{Key: "$cond", Value: a{cond, 1, 0}}}}}
}

func positive(field string) bson.D { return d{{Key: "$gt", Value: a{"$" + field, 0}}} }

// summaryPipeline adds up the counters in one pass: the KPIs and how many messages were opened.
func summaryPipeline(q followed.SummaryQuery) bson.A {
	return a{
		d{{Key: "$match", Value: summaryMatch(q)}},
		d{{Key: "$group", Value: d{
			{Key: "_id", Value: nil},
			{Key: "followed", Value: d{{Key: "$sum", Value: 1}}},
			{Key: "opened", Value: countIf(positive("unique_opens"))},
			{Key: "clicked", Value: countIf(positive("unique_clicks"))},
			{Key: "replied", Value: countIf(positive("replies"))},
			{Key: "opens", Value: d{{Key: "$sum", Value: "$opens"}}},
			{Key: "clicks", Value: d{{Key: "$sum", Value: "$clicks"}}},
			{Key: "attachment_opens", Value: d{{Key: "$sum", Value: "$attachment_opens"}}},
			{Key: "replies", Value: d{{Key: "$sum", Value: "$replies"}}},
			{Key: "first_opened", Value: countIf(d{{Key: "$ne", Value: a{d{{Key: "$ifNull", Value: a{"$first_opened_at", nil}}}, nil}}})},
		}}},
	}
}

// medianPipeline returns the middle one or two times to first open (n opened messages), sorted.
func medianPipeline(q followed.SummaryQuery, n int64) bson.A {
	m := append(summaryMatch(q), e{Key: "first_opened_at", Value: d{{Key: "$ne", Value: nil}}})
	return a{
		d{{Key: "$match", Value: m}},
		d{{Key: "$project", Value: d{{Key: "_id", Value: 0}, {Key: "d", Value: d{{Key: "$subtract", Value: a{"$first_opened_at", "$created_at"}}}}}}},
		d{{Key: "$sort", Value: d{{Key: "d", Value: 1}}}},
		d{{Key: "$skip", Value: (n - 1) / 2}},
		d{{Key: "$limit", Value: 2 - n%2}},
	}
}

// counterUpdate adds a batch's delta to a message as an update pipeline: aggregation's $min and $max
// skip a null first or last open, which the update operators of the same names would keep.
func counterUpdate(dl messageDelta) bson.A {
	add := func(f string, n int) e { return e{Key: f, Value: d{{Key: "$add", Value: a{"$" + f, int64(n)}}}} }
	set := d{add("opens", dl.opens), add("unique_opens", dl.uniqueOpens), add("clicks", dl.clicks),
		add("unique_clicks", dl.uniqueClicks), add("attachment_opens", dl.attachmentOpens), add("replies", dl.replies),
		add("machine_opens", dl.machineOpens), add("machine_clicks", dl.machineClicks)}
	if dl.firstOpen != 0 {
		set = append(set, e{Key: "first_opened_at", Value: d{{Key: "$min", Value: a{"$first_opened_at", dl.firstOpen}}}})
	}
	if dl.lastOpen != 0 {
		set = append(set, e{Key: "last_opened_at", Value: d{{Key: "$max", Value: a{"$last_opened_at", dl.lastOpen}}}})
	}
	return a{d{{Key: "$set", Value: set}}}
}

// relabelUpdate moves a relabelled batch's delta (person's counts negative, machine counts positive)
// as an update pipeline, never taking a count below zero, as the embedded store does.
func relabelUpdate(dl messageDelta) bson.A {
	add := func(f string, n int) e {
		return e{Key: f, Value: d{{Key: "$max", Value: a{int64(0), d{{Key: "$add", Value: a{"$" + f, int64(n)}}}}}}}
	}
	return a{d{{Key: "$set", Value: d{add("opens", dl.opens), add("unique_opens", dl.uniqueOpens), add("clicks", dl.clicks),
		add("unique_clicks", dl.uniqueClicks), add("attachment_opens", dl.attachmentOpens),
		add("machine_opens", dl.machineOpens), add("machine_clicks", dl.machineClicks)}}}}
}

// linkRelabelUpdate moves a link's relabelled clicks (negative counts) as an update pipeline that never
// takes a count below zero, as the embedded store's max(0, ...) does, should the counts and events disagree.
func linkRelabelUpdate(clicks, uniqueClicks int) bson.A {
	add := func(f string, n int) e {
		return e{Key: f, Value: d{{Key: "$max", Value: a{int64(0), d{{Key: "$add", Value: a{"$" + f, int64(n)}}}}}}}
	}
	return a{d{{Key: "$set", Value: d{add("clicks", clicks), add("unique_clicks", uniqueClicks)}}}}
}

// audienceFilter finds which of keys are claimed already.
func audienceFilter(keys []audienceKey) bson.D {
	or := make(a, 0, len(keys))
	for _, k := range keys {
		or = append(or, d{{Key: "message_id", Value: k.message}, {Key: "recipient", Value: int64(k.recipient)}, {Key: "what", Value: k.what}})
	}
	return d{{Key: "$or", Value: or}}
}

// alertsFilter selects a page of an owner's alerts.
func alertsFilter(q alerts.AlertQuery) bson.D {
	f := d{{Key: "owner", Value: q.Owner}}
	if q.UnreadOnly {
		f = append(f, e{Key: "read_at", Value: nil})
	}
	switch {
	case q.Ascending:
		f = append(f, e{Key: "seq", Value: d{{Key: "$gt", Value: q.After}}})
	case q.Before > 0:
		f = append(f, e{Key: "seq", Value: d{{Key: "$lt", Value: q.Before}}})
	}
	return f
}

// dueReminders selects pending reminders due at now whose lease is free or expired.
func dueReminders(now time.Time) bson.D {
	n := now.UnixMilli()
	return d{{Key: "state", Value: string(alerts.Pending)}, {Key: "due_at", Value: d{{Key: "$lte", Value: n}}},
		{Key: "lease_until", Value: d{{Key: "$lte", Value: n}}}}
}

// claimUpdate takes a reminder or a job for instance until until.
func claimUpdate(instance string, until time.Time, extra ...e) bson.D {
	set := append(d{{Key: "lease_owner", Value: instance}, {Key: "lease_until", Value: until.UnixMilli()}}, extra...)
	return d{{Key: "$set", Value: set}}
}

// engagementKinds are the event kinds engagement alerts report.
var engagementKinds = a{string(followed.LinkClicked), string(followed.AttachmentOpened), string(followed.Replied)}

// engagementsPipeline scans limit events after the cursor by sequence and gives, in one document, how
// far they reach (through) and, with the owner, subject and recipient address each needs as the
// embedded store's joins do, the people's clicks, attachment opens and replies among them that their
// owner's preferences want (rows): most events are opens, and clicks are alerted only to those who
// ask, so reading every event for the alerts service to drop most was wasted.
func engagementsPipeline(after int64, limit int) bson.A {
	wantsBranch := func(kind followed.EventKind, field string, byDefault bool) bson.D {
		return d{{Key: "case", Value: d{{Key: "$eq", Value: a{"$kind", string(kind)}}}},
			{Key: "then", Value: d{{Key: "$ne", Value: a{d{{Key: "$ifNull", Value: a{d{{Key: "$first", Value: "$p." + field}}, b2i(byDefault)}}}, 0}}}}}
	}
	return a{
		d{{Key: "$match", Value: d{{Key: "seq", Value: d{{Key: "$gt", Value: after}}}}}},
		d{{Key: "$sort", Value: d{{Key: "seq", Value: 1}}}},
		d{{Key: "$limit", Value: int64(limit)}},
		d{{Key: "$facet", Value: d{
			{Key: "through", Value: a{d{{Key: "$group", Value: d{{Key: "_id", Value: nil}, {Key: "seq", Value: d{{Key: "$max", Value: "$seq"}}}}}}}},
			{Key: "rows", Value: a{
				d{{Key: "$match", Value: d{{Key: "kind", Value: d{{Key: "$in", Value: engagementKinds}}}, {Key: "machine", Value: 0}}}},
				d{{Key: "$lookup", Value: d{{Key: "from", Value: "messages"}, {Key: "localField", Value: "message_id"},
					{Key: "foreignField", Value: "id"}, {Key: "as", Value: "m"},
					{Key: "pipeline", Value: a{d{{Key: "$project", Value: d{{Key: "_id", Value: 0}, {Key: "owner", Value: 1}, {Key: "subject", Value: 1}}}}}}}}},
				d{{Key: "$set", Value: d{
					{Key: "owner", Value: d{{Key: "$ifNull", Value: a{d{{Key: "$first", Value: "$m.owner"}}, ""}}}},
					{Key: "subject", Value: d{{Key: "$ifNull", Value: a{d{{Key: "$first", Value: "$m.subject"}}, ""}}}},
				}}},
				d{{Key: "$match", Value: d{{Key: "owner", Value: d{{Key: "$ne", Value: ""}}}}}},
				d{{Key: "$lookup", Value: d{{Key: "from", Value: "alert_preferences"}, {Key: "localField", Value: "owner"},
					{Key: "foreignField", Value: "owner"}, {Key: "as", Value: "p"}}}},
				d{{Key: "$match", Value: d{{Key: "$expr", Value: d{{Key: "$switch", Value: d{
					{Key: "branches", Value: a{
						wantsBranch(followed.LinkClicked, "link_clicked", alerts.DefaultPreferences.LinkClicked),
						wantsBranch(followed.AttachmentOpened, "attachment_opened", alerts.DefaultPreferences.AttachmentOpened),
						wantsBranch(followed.Replied, "reply_received", alerts.DefaultPreferences.ReplyReceived),
					}},
					{Key: "default", Value: false},
				}}}}}}},
				d{{Key: "$lookup", Value: d{{Key: "from", Value: "recipients"}, {Key: "let", Value: d{{Key: "mid", Value: "$message_id"}, {Key: "idx", Value: "$recipient"}}},
					{Key: "as", Value: "r"}, {Key: "pipeline", Value: a{
						d{{Key: "$match", Value: d{{Key: "$expr", Value: d{{Key: "$and", Value: a{
							d{{Key: "$eq", Value: a{"$message_id", "$$mid"}}}, d{{Key: "$eq", Value: a{"$idx", "$$idx"}}}}}}}}}},
						d{{Key: "$project", Value: d{{Key: "_id", Value: 0}, {Key: "email", Value: 1}}}},
					}}}}},
				d{{Key: "$set", Value: d{{Key: "email", Value: d{{Key: "$ifNull", Value: a{d{{Key: "$first", Value: "$r.email"}}, ""}}}}}}},
				d{{Key: "$project", Value: d{{Key: "m", Value: 0}, {Key: "p", Value: 0}, {Key: "r", Value: 0}}}},
			}},
		}}},
	}
}

// sentStages follow a stage of messages and set sent to when each went out, dropping those that have
// not, as the embedded store's sentAt: its delivery job's send time (its first sent render's when the
// job stopped partway), else, with no job at all, its creation, as the Outlook add-in sends its own drafts.
func sentStages() bson.A {
	return a{
		d{{Key: "$lookup", Value: d{{Key: "from", Value: "delivery_jobs"}, {Key: "localField", Value: "id"},
			{Key: "foreignField", Value: "message_id"}, {Key: "as", Value: "j"}, {Key: "pipeline", Value: a{
				d{{Key: "$project", Value: d{{Key: "_id", Value: 0}, {Key: "sent_at", Value: 1}}}}}}}}},
		d{{Key: "$lookup", Value: d{{Key: "from", Value: "render_sends"}, {Key: "localField", Value: "id"},
			{Key: "foreignField", Value: "message_id"}, {Key: "as", Value: "s"}, {Key: "pipeline", Value: a{
				d{{Key: "$match", Value: d{{Key: "sent_at", Value: d{{Key: "$ne", Value: nil}}}}}},
				d{{Key: "$group", Value: d{{Key: "_id", Value: nil}, {Key: "at", Value: d{{Key: "$min", Value: "$sent_at"}}}}}}}}}}},
		d{{Key: "$set", Value: d{{Key: "sent", Value: d{{Key: "$cond", Value: a{
			d{{Key: "$eq", Value: a{d{{Key: "$size", Value: "$j"}}, 0}}},
			"$created_at",
			d{{Key: "$ifNull", Value: a{d{{Key: "$first", Value: "$j.sent_at"}}, d{{Key: "$first", Value: "$s.at"}}, nil}}},
		}}}}}}},
		d{{Key: "$match", Value: d{{Key: "sent", Value: d{{Key: "$ne", Value: nil}}}}}},
	}
}

// firstEngagementStages follow a stage whose documents carry a recipient row (message_id, idx) and add
// sent (when the message went out, see sentStages; rows of messages that have not are dropped) and read
// (its first human engagement, null when none) as the embedded store's firstEngagement: a shared
// render's events count only for a message's only recipient.
func firstEngagementStages(prefix string) bson.A {
	idx := "$" + prefix + "idx"
	only := d{{Key: "$eq", Value: a{d{{Key: "$ifNull", Value: a{d{{Key: "$first", Value: "$n.n"}}, 0}}}, 1}}}
	mine := d{{Key: "$filter", Value: d{{Key: "input", Value: "$e"}, {Key: "cond", Value: d{{Key: "$or", Value: a{
		d{{Key: "$eq", Value: a{"$$this._id", idx}}},
		d{{Key: "$and", Value: a{d{{Key: "$eq", Value: a{"$$this._id", -1}}}, only}}},
	}}}}}}}
	return a{
		d{{Key: "$lookup", Value: d{{Key: "from", Value: "messages"}, {Key: "localField", Value: prefix + "message_id"},
			{Key: "foreignField", Value: "id"}, {Key: "as", Value: "m"}, {Key: "pipeline", Value: append(append(a{
				d{{Key: "$match", Value: d{{Key: "following", Value: int64(1)}}}}},
				sentStages()...),
				d{{Key: "$project", Value: d{{Key: "_id", Value: 0}, {Key: "sent", Value: 1}}}})}}}},
		d{{Key: "$unwind", Value: "$m"}},
		d{{Key: "$lookup", Value: d{{Key: "from", Value: "recipients"}, {Key: "localField", Value: prefix + "message_id"},
			{Key: "foreignField", Value: "message_id"}, {Key: "as", Value: "n"}, {Key: "pipeline", Value: a{d{{Key: "$count", Value: "n"}}}}}}},
		d{{Key: "$lookup", Value: d{{Key: "from", Value: "events"}, {Key: "localField", Value: prefix + "message_id"},
			{Key: "foreignField", Value: "message_id"}, {Key: "as", Value: "e"}, {Key: "pipeline", Value: a{
				d{{Key: "$match", Value: d{{Key: "machine", Value: int64(0)}, {Key: "kind", Value: d{{Key: "$in", Value: a{
					string(followed.Opened), string(followed.LinkClicked), string(followed.AttachmentOpened), string(followed.Replied)}}}}}}},
				d{{Key: "$group", Value: d{{Key: "_id", Value: "$recipient"}, {Key: "at", Value: d{{Key: "$min", Value: "$at"}}}}}}}}}}},
		d{{Key: "$project", Value: d{
			{Key: "_id", Value: 0},
			{Key: "email", Value: "$" + prefix + "email"},
			{Key: "zone", Value: 1},
			{Key: "sent", Value: "$m.sent"},
			{Key: "read", Value: d{{Key: "$min", Value: d{{Key: "$map", Value: d{{Key: "input", Value: mine}, {Key: "in", Value: "$$this.at"}}}}}}},
		}}},
	}
}

// recipientEngagementPipeline reads, per recipient row of the addresses, when the message was sent
// and first engaged with.
func recipientEngagementPipeline(emails []string) bson.A {
	return append(a{d{{Key: "$match", Value: d{{Key: "email", Value: d{{Key: "$in", Value: emails}}}}}}},
		firstEngagementStages("")...)
}

// localEngagementPipeline does the same for the recipients with a zone on record, of one domain or
// (domain "") of all.
func localEngagementPipeline(domain string) bson.A {
	match := d{}
	if domain != "" {
		match = d{{Key: "domain", Value: domain}}
	}
	return append(a{
		d{{Key: "$match", Value: match}},
		d{{Key: "$lookup", Value: d{{Key: "from", Value: "recipients"}, {Key: "localField", Value: "email"},
			{Key: "foreignField", Value: "email"}, {Key: "as", Value: "r"}}}},
		d{{Key: "$unwind", Value: "$r"}},
	}, firstEngagementStages("r.")...)
}

// domainZonePipeline finds the zone most of a domain's profiled recipients are in (ties: by name).
func domainZonePipeline(domain string) bson.A {
	return a{
		d{{Key: "$match", Value: d{{Key: "domain", Value: domain}}}},
		d{{Key: "$group", Value: d{{Key: "_id", Value: "$zone"}, {Key: "n", Value: d{{Key: "$sum", Value: 1}}}}}},
		d{{Key: "$sort", Value: d{{Key: "n", Value: -1}, {Key: "_id", Value: 1}}}},
		d{{Key: "$limit", Value: 1}},
	}
}

// templateStatsPipeline counts, per template of a category, its followed messages that went out (see
// sentStages), those opened by a person, those replied to, and recorded outcomes.
func templateStatsPipeline(category string) bson.A {
	count := func(cond any) bson.D {
		return d{{Key: "$size", Value: d{{Key: "$filter", Value: d{{Key: "input", Value: "$ms"}, {Key: "cond", Value: cond}}}}}}
	}
	return a{
		d{{Key: "$match", Value: d{{Key: "category", Value: category}}}},
		d{{Key: "$lookup", Value: d{{Key: "from", Value: "messages"}, {Key: "localField", Value: "id"},
			{Key: "foreignField", Value: "template_id"}, {Key: "as", Value: "ms"}, {Key: "pipeline", Value: append(append(a{
				d{{Key: "$match", Value: d{{Key: "following", Value: int64(1)}, {Key: "template_id", Value: d{{Key: "$ne", Value: ""}}}}}}},
				sentStages()...),
				d{{Key: "$lookup", Value: d{{Key: "from", Value: "outcomes"}, {Key: "localField", Value: "id"},
					{Key: "foreignField", Value: "message_id"}, {Key: "as", Value: "o"}}}},
				d{{Key: "$project", Value: d{{Key: "_id", Value: 0}, {Key: "uo", Value: "$unique_opens"}, {Key: "r", Value: "$replies"},
					{Key: "o", Value: d{{Key: "$first", Value: "$o.outcome"}}}}}},
			)}}}},
		d{{Key: "$project", Value: d{{Key: "_id", Value: 0}, {Key: "id", Value: 1},
			{Key: "emails", Value: d{{Key: "$size", Value: "$ms"}}},
			{Key: "opened", Value: count(d{{Key: "$gt", Value: a{"$$this.uo", 0}}})},
			{Key: "replied", Value: count(d{{Key: "$gt", Value: a{"$$this.r", 0}}})},
			{Key: "won", Value: count(d{{Key: "$eq", Value: a{"$$this.o", "WON"}}})},
			{Key: "lost", Value: count(d{{Key: "$eq", Value: a{"$$this.o", "LOST"}}})},
		}}},
		d{{Key: "$sort", Value: d{{Key: "id", Value: 1}}}},
	}
}

// dueJobs selects jobs a worker may claim: scheduled and due, or sending with an expired lease.
func dueJobs(now time.Time) bson.D {
	n := now.UnixMilli()
	return d{{Key: "$or", Value: a{
		d{{Key: "status", Value: "SCHEDULED"}, {Key: "due_at", Value: d{{Key: "$lte", Value: n}}}},
		d{{Key: "status", Value: "SENDING"}, {Key: "lease_until", Value: d{{Key: "$lte", Value: n}}}},
	}}}
}

// jobClaim leases a due job to instance until until, marking it SENDING and counting the attempt.
func jobClaim(instance string, until time.Time) bson.D {
	return append(claimUpdate(instance, until, e{Key: "status", Value: "SENDING"}),
		e{Key: "$inc", Value: d{{Key: "attempts", Value: 1}}})
}

// leaseWrite is what a lease holder writes to its job before recording under the lease, so the check
// is a write that another instance's claim conflicts with.
func leaseWrite() bson.D { return d{{Key: "$inc", Value: d{{Key: "lease_writes", Value: int64(1)}}}} }

// latestPreferencesPipeline picks, per target, the entry with the highest seq.
func latestPreferencesPipeline(targets []string) bson.A {
	return a{
		d{{Key: "$match", Value: d{{Key: "target", Value: d{{Key: "$in", Value: targets}}}}}},
		d{{Key: "$sort", Value: d{{Key: "target", Value: 1}, {Key: "seq", Value: -1}}}},
		d{{Key: "$group", Value: d{{Key: "_id", Value: "$target"}, {Key: "doc", Value: d{{Key: "$first", Value: "$$ROOT"}}}}}},
	}
}

// auditFilter selects a page of the audit log, newest first.
func auditFilter(q consent.AuditQuery) bson.D {
	f := d{}
	if q.Target != "" {
		f = append(f, e{Key: "target", Value: q.Target})
	}
	if q.BeforeSeq > 0 {
		f = append(f, e{Key: "seq", Value: d{{Key: "$lt", Value: q.BeforeSeq}}})
	}
	return f
}

// textHolding matches a field holding the address in any case, as the erasure's blanking does.
func textHolding(field, email string) bson.D {
	return d{{Key: field, Value: d{{Key: "$regex", Value: regexp.QuoteMeta(email)}, {Key: "$options", Value: "i"}}}}
}

// auditHolding finds the audit entries naming the address in any case, as the embedded store's
// instr(lower(...)) does, since the address is replaced in whatever case it was written.
func auditHolding(email string) bson.D {
	return d{{Key: "$or", Value: a{textHolding("target", email), textHolding("before_value", email), textHolding("after_value", email)}}}
}

// ownEvents selects a placement's events (and audience rows): those of its individual render, or all of
// a message sent to the address alone.
func ownEvents(message string, idx int) bson.D {
	return d{{Key: "message_id", Value: message}, {Key: "recipient", Value: d{{Key: "$in", Value: a{int64(idx), int64(-1)}}}}}
}
