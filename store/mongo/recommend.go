package mongo

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/engage-email/engage/recommend"
)

var (
	_ recommend.Store          = (*DB)(nil)
	_ recommend.TemplateStore  = (*DB)(nil)
	_ recommend.Templates      = (*DB)(nil)
	_ recommend.Outcomes       = (*DB)(nil)
	_ recommend.ProfileSaver   = (*DB)(nil)
	_ recommend.ColleagueStore = (*DB)(nil)
)

// sendRow is one recipient of one followed message: when it was sent, when first engaged with (nil
// for never), and the recipient's zone for local-time histograms.
type sendRow struct {
	Email string `bson:"email"`
	Zone  string `bson:"zone"`
	Sent  int64  `bson:"sent"`
	Read  *int64 `bson:"read"`
}

func lower(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToLower(s)
	}
	return out
}

// RecipientEngagement implements recommend.Store as one aggregation over the recipients' rows.
func (db *DB) RecipientEngagement(ctx context.Context, _ string, recipients []string) ([]recommend.Engagement, error) {
	if len(recipients) == 0 {
		return nil, nil
	}
	rows, err := aggregate[sendRow](ctx, db.c("recipients"), recipientEngagementPipeline(lower(recipients)))
	if err != nil {
		return nil, fail("recipient engagement", err)
	}
	byAddr := map[string]*recommend.Engagement{}
	for _, r := range rows {
		e := byAddr[r.Email]
		if e == nil {
			e = &recommend.Engagement{Recipient: r.Email}
			byAddr[r.Email] = e
		}
		e.AddDelivery(ms(r.Sent), fromMillis(r.Read))
	}
	out := []recommend.Engagement{}
	for _, a := range lower(recipients) {
		if e := byAddr[a]; e != nil {
			out = append(out, *e)
			delete(byAddr, a)
		}
	}
	return out, nil
}

// DomainEngagement implements recommend.Store: members with a zone on record, in that zone's local time.
func (db *DB) DomainEngagement(ctx context.Context, domains []string) (map[string]recommend.Engagement, error) {
	out := make(map[string]recommend.Engagement, len(domains))
	for _, dm := range lower(domains) {
		e, n, err := db.localEngagement(ctx, dm)
		if err != nil {
			return nil, fail("engagement of domain "+dm, err)
		}
		if n > 0 {
			e.Recipient = dm
			out[dm] = e
		}
	}
	return out, nil
}

// OrgEngagement implements recommend.Store: every recipient with a zone on record, in local time.
func (db *DB) OrgEngagement(ctx context.Context) (recommend.Engagement, error) {
	e, _, err := db.localEngagement(ctx, "")
	if err != nil {
		return recommend.Engagement{}, fail("organisation engagement", err)
	}
	return e, nil
}

func (db *DB) localEngagement(ctx context.Context, domain string) (recommend.Engagement, int, error) {
	rows, err := aggregate[sendRow](ctx, db.c("recipient_profiles"), localEngagementPipeline(domain))
	if err != nil {
		return recommend.Engagement{}, 0, err
	}
	var e recommend.Engagement
	zones := map[string]*time.Location{}
	n := 0
	for _, r := range rows {
		loc, ok := zones[r.Zone]
		if !ok {
			loc, _ = time.LoadLocation(r.Zone) // checked when saved; an unloadable one is left out
			zones[r.Zone] = loc
		}
		if loc == nil {
			continue
		}
		n++
		e.AddSend(ms(r.Sent), loc)
		if r.Read != nil {
			e.AddEngagement(ms(r.Sent), ms(*r.Read), loc)
		}
	}
	return e, n, nil
}

type profileDoc struct {
	Email     string `bson:"email"`
	Domain    string `bson:"domain"`
	Zone      string `bson:"zone"`
	Source    string `bson:"source"`
	UpdatedAt int64  `bson:"updated_at"`
}

// Profiles implements recommend.Store.
func (db *DB) Profiles(ctx context.Context, recipients []string) (map[string]recommend.Profile, error) {
	out := make(map[string]recommend.Profile, len(recipients))
	if len(recipients) == 0 {
		return out, nil
	}
	docs, err := all[profileDoc](ctx, db.c("recipient_profiles"), bson.D{{Key: "email", Value: bson.D{{Key: "$in", Value: lower(recipients)}}}})
	if err != nil {
		return nil, fail("recipient profiles", err)
	}
	for _, p := range docs {
		if loc, err := time.LoadLocation(p.Zone); err == nil {
			out[p.Email] = recommend.Profile{Recipient: p.Email, Location: loc, Source: p.Source}
		}
	}
	return out, nil
}

// DomainZones implements recommend.Store: the zone most profiled members are in (ties: by name).
func (db *DB) DomainZones(ctx context.Context, domains []string) (map[string]*time.Location, error) {
	out := make(map[string]*time.Location, len(domains))
	for _, dm := range lower(domains) {
		rows, err := aggregate[struct {
			Zone string `bson:"_id"`
		}](ctx, db.c("recipient_profiles"), domainZonePipeline(dm))
		if err != nil {
			return nil, fail("zone of domain "+dm, err)
		}
		if len(rows) == 0 {
			continue
		}
		if loc, err := time.LoadLocation(rows[0].Zone); err == nil {
			out[dm] = loc
		}
	}
	return out, nil
}

// SaveProfile implements recommend.ProfileSaver.
func (db *DB) SaveProfile(ctx context.Context, p recommend.Profile, at time.Time) error {
	p, err := recommend.CheckProfile(p)
	if err != nil {
		return fmt.Errorf("mongo: save profile: %w", err)
	}
	doc := profileDoc{Email: p.Recipient, Domain: p.Recipient[strings.LastIndexByte(p.Recipient, '@')+1:], Zone: p.Location.String(),
		Source: p.Source, UpdatedAt: at.UnixMilli()}
	if _, err := db.c("recipient_profiles").ReplaceOne(ctx, bson.D{{Key: "email", Value: doc.Email}}, doc, options.Replace().SetUpsert(true)); err != nil {
		return fail("save profile of "+p.Recipient, err)
	}
	return nil
}

// Colleagues implements recommend.ColleagueStore; without configured domains the senders' domains are
// read first, as one distinct over the recent messages.
func (db *DB) Colleagues(ctx context.Context, q recommend.ColleagueQuery) ([]string, error) {
	if q.Limit <= 0 {
		return nil, nil
	}
	domains := lower(q.Domains)
	if len(domains) == 0 {
		var owners []string
		if err := db.c("messages").Distinct(ctx, "owner", d{{Key: "created_at", Value: d{{Key: "$gte", Value: q.Since.UnixMilli()}}}}).Decode(&owners); err != nil {
			return nil, fail("senders of recent messages", err)
		}
		seen := map[string]bool{}
		for _, o := range owners {
			if dm := strings.ToLower(o[strings.LastIndexByte(o, '@')+1:]); !seen[dm] {
				seen[dm] = true
				domains = append(domains, dm)
			}
		}
		if len(domains) == 0 {
			return nil, nil
		}
	}
	rows, err := aggregate[struct {
		Email string `bson:"_id"`
	}](ctx, db.c("messages"), colleaguesPipeline(q, domains))
	if err != nil {
		return nil, fail("colleagues without a fresh mailbox zone", err)
	}
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.Email
	}
	return out, nil
}

// colleaguesPipeline finds, from the recent followed messages (messages_created), the recipients at
// domains after q.After that have no profile or a stale mailbox one, in address order.
func colleaguesPipeline(q recommend.ColleagueQuery, domains []string) bson.A {
	return a{
		d{{Key: "$match", Value: d{{Key: "created_at", Value: d{{Key: "$gte", Value: q.Since.UnixMilli()}}}, {Key: "following", Value: int64(1)}}}},
		d{{Key: "$lookup", Value: d{{Key: "from", Value: "recipients"}, {Key: "localField", Value: "id"},
			{Key: "foreignField", Value: "message_id"}, {Key: "as", Value: "r"}}}},
		d{{Key: "$unwind", Value: "$r"}},
		d{{Key: "$match", Value: d{{Key: "r.email", Value: d{{Key: "$gt", Value: q.After}}}}}},
		d{{Key: "$project", Value: d{{Key: "_id", Value: 0}, {Key: "email", Value: "$r.email"},
			{Key: "domain", Value: d{{Key: "$arrayElemAt", Value: a{d{{Key: "$split", Value: a{"$r.email", "@"}}}, -1}}}}}}},
		d{{Key: "$match", Value: d{{Key: "domain", Value: d{{Key: "$in", Value: domains}}}}}},
		d{{Key: "$group", Value: d{{Key: "_id", Value: "$email"}}}},
		d{{Key: "$lookup", Value: d{{Key: "from", Value: "recipient_profiles"}, {Key: "localField", Value: "_id"},
			{Key: "foreignField", Value: "email"}, {Key: "as", Value: "p"}}}},
		d{{Key: "$match", Value: d{{Key: "$or", Value: a{
			d{{Key: "p", Value: d{{Key: "$size", Value: 0}}}},
			d{{Key: "p", Value: d{{Key: "$elemMatch", Value: d{{Key: "source", Value: recommend.SourceMailbox},
				{Key: "updated_at", Value: d{{Key: "$lt", Value: q.StaleBefore.UnixMilli()}}}}}}}},
		}}}}},
		d{{Key: "$sort", Value: d{{Key: "_id", Value: 1}}}},
		d{{Key: "$limit", Value: int64(q.Limit)}},
	}
}

type templateDoc struct {
	ID        string `bson:"id"`
	Owner     string `bson:"owner"`
	Name      string `bson:"name"`
	Subject   string `bson:"subject"`
	HTML      string `bson:"html"`
	Category  string `bson:"category"`
	CreatedAt int64  `bson:"created_at"`
	UpdatedAt int64  `bson:"updated_at"`
}

func (t templateDoc) template() recommend.Template {
	return recommend.Template{ID: t.ID, Owner: t.Owner, Name: t.Name, Subject: t.Subject, HTML: t.HTML, Category: t.Category,
		CreatedAt: ms(t.CreatedAt), UpdatedAt: ms(t.UpdatedAt)}
}

// CreateTemplate implements recommend.Templates.
func (db *DB) CreateTemplate(ctx context.Context, t recommend.Template) error {
	if _, err := db.c("templates").InsertOne(ctx, templateDoc{ID: t.ID, Owner: t.Owner, Name: t.Name, Subject: t.Subject, HTML: t.HTML,
		Category: t.Category, CreatedAt: t.CreatedAt.UnixMilli(), UpdatedAt: t.UpdatedAt.UnixMilli()}); err != nil {
		return fail("create template "+t.ID, err)
	}
	return nil
}

// Template implements recommend.Templates.
func (db *DB) Template(ctx context.Context, id string) (recommend.Template, error) {
	t, err := one[templateDoc](ctx, db.c("templates"), bson.D{{Key: "id", Value: id}}, "template "+id, recommend.ErrNotFound)
	if err != nil {
		return recommend.Template{}, err
	}
	return t.template(), nil
}

// UpdateTemplate implements recommend.Templates.
func (db *DB) UpdateTemplate(ctx context.Context, t recommend.Template) error {
	res, err := db.c("templates").UpdateOne(ctx, bson.D{{Key: "id", Value: t.ID}}, bson.D{{Key: "$set", Value: bson.D{
		{Key: "name", Value: t.Name}, {Key: "subject", Value: t.Subject}, {Key: "html", Value: t.HTML}, {Key: "category", Value: t.Category},
		{Key: "updated_at", Value: t.UpdatedAt.UnixMilli()}}}})
	if err != nil {
		return fail("update template "+t.ID, err)
	}
	if res.MatchedCount == 0 {
		return fmt.Errorf("mongo: update template %s: %w", t.ID, recommend.ErrNotFound)
	}
	return nil
}

// DeleteTemplate implements recommend.Templates.
func (db *DB) DeleteTemplate(ctx context.Context, id string) error {
	res, err := db.c("templates").DeleteOne(ctx, bson.D{{Key: "id", Value: id}})
	if err != nil {
		return fail("delete template "+id, err)
	}
	if res.DeletedCount == 0 {
		return fmt.Errorf("mongo: delete template %s: %w", id, recommend.ErrNotFound)
	}
	return nil
}

// ListTemplates implements recommend.Templates.
func (db *DB) ListTemplates(ctx context.Context, category string) ([]recommend.Template, error) {
	f := bson.D{}
	if category != "" {
		f = bson.D{{Key: "category", Value: category}}
	}
	docs, err := all[templateDoc](ctx, db.c("templates"), f, options.Find().SetSort(bson.D{{Key: "category", Value: 1}, {Key: "name", Value: 1}, {Key: "id", Value: 1}}))
	if err != nil {
		return nil, fail("list templates", err)
	}
	out := make([]recommend.Template, len(docs))
	for i, t := range docs {
		out[i] = t.template()
	}
	return out, nil
}

// TemplateStats implements recommend.TemplateStore with one aggregation (see templateStatsPipeline).
func (db *DB) TemplateStats(ctx context.Context, category string) ([]recommend.TemplateStats, error) {
	rows, err := aggregate[struct {
		ID      string `bson:"id"`
		Emails  int    `bson:"emails"`
		Opened  int    `bson:"opened"`
		Replied int    `bson:"replied"`
		Won     int    `bson:"won"`
		Lost    int    `bson:"lost"`
	}](ctx, db.c("templates"), templateStatsPipeline(category))
	if err != nil {
		return nil, fail(fmt.Sprintf("template stats of %q", category), err)
	}
	out := make([]recommend.TemplateStats, len(rows))
	for i, r := range rows {
		out[i] = recommend.TemplateStats{ID: r.ID, Emails: r.Emails, HumanOpened: r.Opened, Replied: r.Replied, Won: r.Won, Lost: r.Lost}
	}
	return out, nil
}

// RecordOutcome implements recommend.Outcomes: the message is checked to be owner's in the same
// transaction that records the outcome.
func (db *DB) RecordOutcome(ctx context.Context, owner, messageID string, o recommend.Outcome, at time.Time) error {
	return db.tx(ctx, "record outcome of "+messageID, func(ctx context.Context) error {
		n, err := db.c("messages").CountDocuments(ctx, bson.D{{Key: "id", Value: messageID}, {Key: "owner", Value: owner}})
		if err != nil {
			return err
		}
		if n == 0 {
			return recommend.ErrNotFound
		}
		_, err = db.c("outcomes").ReplaceOne(ctx, bson.D{{Key: "message_id", Value: messageID}}, bson.D{{Key: "message_id", Value: messageID},
			{Key: "outcome", Value: string(o)}, {Key: "recorded_at", Value: at.UnixMilli()}}, options.Replace().SetUpsert(true))
		return err
	})
}
