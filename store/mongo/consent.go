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

	"github.com/engage-email/engage/consent"
	"github.com/engage-email/engage/followed"
)

var _ consent.Store = (*DB)(nil)

// Settings implements consent.Store.
func (db *DB) Settings(ctx context.Context) (consent.Settings, error) {
	var x struct {
		Body string `bson:"body"`
	}
	err := db.c("consent_settings").FindOne(ctx, bson.D{{Key: "id", Value: int64(1)}}).Decode(&x)
	if errors.Is(err, mdb.ErrNoDocuments) {
		return consent.Settings{}, fmt.Errorf("mongo: settings: %w", followed.ErrNotFound)
	}
	if err != nil {
		return consent.Settings{}, fail("settings", err)
	}
	// Start from the defaults, so that a setting added after this document was saved has its default.
	s := consent.DefaultSettings()
	if err := json.Unmarshal([]byte(x.Body), &s); err != nil {
		return consent.Settings{}, fmt.Errorf("mongo: settings: %w", err)
	}
	return s, nil
}

// SaveSettings implements consent.Store.
func (db *DB) SaveSettings(ctx context.Context, s consent.Settings, a consent.AuditEntry) error {
	body, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("mongo: save settings: %w", err)
	}
	return db.tx(ctx, "save settings", func(ctx context.Context) error {
		if _, err := db.c("consent_settings").ReplaceOne(ctx, bson.D{{Key: "id", Value: int64(1)}},
			bson.D{{Key: "id", Value: int64(1)}, {Key: "body", Value: string(body)}, {Key: "updated_at", Value: a.At.UnixMilli()}},
			options.Replace().SetUpsert(true)); err != nil {
			return err
		}
		return db.insertAudit(ctx, a)
	})
}

type auditDoc struct {
	Seq    int64  `bson:"seq"`
	At     int64  `bson:"at"`
	Actor  string `bson:"actor"`
	Action string `bson:"action"`
	Target string `bson:"target"`
	Before string `bson:"before_value"`
	After  string `bson:"after_value"`
}

func (db *DB) insertAudit(ctx context.Context, as ...consent.AuditEntry) error {
	if len(as) == 0 {
		return nil
	}
	last, err := db.nextSeq(ctx, "audit_log", len(as))
	if err != nil {
		return err
	}
	docs := make([]any, len(as))
	for i, x := range as {
		docs[i] = auditDoc{Seq: last - int64(len(as)) + 1 + int64(i), At: x.At.UnixMilli(), Actor: x.Actor, Action: x.Action,
			Target: x.Target, Before: x.Before, After: x.After}
	}
	if _, err := db.c("audit_log").InsertMany(ctx, docs); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

type preferenceDoc struct {
	Seq        int64  `bson:"seq"`
	Target     string `bson:"target"`
	Preference string `bson:"preference"`
	At         int64  `bson:"at"`
	SetBy      string `bson:"set_by"`
	Source     string `bson:"source"`
	Note       string `bson:"note"`
}

func (x preferenceDoc) entry() consent.Entry {
	return consent.Entry{Seq: x.Seq, Target: x.Target, Preference: consent.Preference(x.Preference), At: ms(x.At), By: x.SetBy,
		Source: x.Source, Note: x.Note}
}

func (db *DB) insertPreferences(ctx context.Context, es ...consent.Entry) error {
	if len(es) == 0 {
		return nil
	}
	last, err := db.nextSeq(ctx, "follow_preferences", len(es))
	if err != nil {
		return err
	}
	docs := make([]any, len(es))
	for i, x := range es {
		docs[i] = preferenceDoc{Seq: last - int64(len(es)) + 1 + int64(i), Target: x.Target, Preference: string(x.Preference),
			At: x.At.UnixMilli(), SetBy: x.By, Source: x.Source, Note: x.Note}
	}
	if _, err := db.c("follow_preferences").InsertMany(ctx, docs); err != nil {
		return fmt.Errorf("preferences: %w", err)
	}
	return nil
}

// AddPreferences implements consent.Store.
func (db *DB) AddPreferences(ctx context.Context, entries []consent.Entry, audit []consent.AuditEntry) error {
	return db.tx(ctx, "add preferences", func(ctx context.Context) error {
		if err := db.insertPreferences(ctx, entries...); err != nil {
			return err
		}
		for _, e := range entries {
			if e.Preference == consent.DoNotAllow {
				if err := db.stopTracking(ctx, e); err != nil {
					return err
				}
			}
		}
		return db.insertAudit(ctx, audit...)
	})
}

// LatestPreferences implements consent.Store: the entry with the highest seq per target.
func (db *DB) LatestPreferences(ctx context.Context, targets []string) (map[string]consent.Entry, error) {
	out := map[string]consent.Entry{}
	if len(targets) == 0 {
		return out, nil
	}
	rows, err := aggregate[struct {
		Doc preferenceDoc `bson:"doc"`
	}](ctx, db.c("follow_preferences"), latestPreferencesPipeline(targets))
	if err != nil {
		return nil, fail("latest preferences", err)
	}
	for _, r := range rows {
		out[r.Doc.Target] = r.Doc.entry()
	}
	return out, nil
}

// PreferenceHistory implements consent.Store.
func (db *DB) PreferenceHistory(ctx context.Context, target string) ([]consent.Entry, error) {
	docs, err := all[preferenceDoc](ctx, db.c("follow_preferences"), bson.D{{Key: "target", Value: target}},
		options.Find().SetSort(bson.D{{Key: "seq", Value: -1}}))
	if err != nil {
		return nil, fail("preference history of "+target, err)
	}
	out := make([]consent.Entry, len(docs))
	for i, x := range docs {
		out[i] = x.entry()
	}
	return out, nil
}

// Audit implements consent.Store.
func (db *DB) Audit(ctx context.Context, q consent.AuditQuery) ([]consent.AuditEntry, error) {
	docs, err := all[auditDoc](ctx, db.c("audit_log"), auditFilter(q), options.Find().SetSort(bson.D{{Key: "seq", Value: -1}}).SetLimit(int64(q.Limit)))
	if err != nil {
		return nil, fail("audit log", err)
	}
	var out []consent.AuditEntry
	for _, x := range docs {
		out = append(out, consent.AuditEntry{Seq: x.Seq, At: ms(x.At), Actor: x.Actor, Action: x.Action, Target: x.Target,
			Before: x.Before, After: x.After})
	}
	return out, nil
}

type suppressionDoc struct {
	Email  string `bson:"email"`
	Until  *int64 `bson:"until"`
	Reason string `bson:"reason"`
	At     int64  `bson:"at"`
}

// AddSuppression implements consent.Store.
func (db *DB) AddSuppression(ctx context.Context, s consent.Suppression) error {
	if _, err := db.c("suppressions").ReplaceOne(ctx, bson.D{{Key: "email", Value: s.Email}},
		bson.D{{Key: "email", Value: s.Email}, {Key: "until", Value: millis(s.Until)}, {Key: "reason", Value: s.Reason}, {Key: "at", Value: s.At.UnixMilli()}},
		options.Replace().SetUpsert(true)); err != nil {
		return fail("suppress "+s.Email, err)
	}
	return nil
}

// LiftSuppression implements consent.Store.
func (db *DB) LiftSuppression(ctx context.Context, email string, a consent.AuditEntry) error {
	return db.tx(ctx, "lift suppression of "+email, func(ctx context.Context) error {
		res, err := db.c("suppressions").DeleteOne(ctx, bson.D{{Key: "email", Value: email}})
		if err != nil {
			return err
		}
		if res.DeletedCount == 0 {
			return followed.ErrNotFound
		}
		return db.insertAudit(ctx, a)
	})
}

// Suppressions implements consent.Store.
func (db *DB) Suppressions(ctx context.Context, emails []string) (map[string]consent.Suppression, error) {
	out := map[string]consent.Suppression{}
	if len(emails) == 0 {
		return out, nil
	}
	docs, err := all[suppressionDoc](ctx, db.c("suppressions"), bson.D{{Key: "email", Value: bson.D{{Key: "$in", Value: emails}}}})
	if err != nil {
		return nil, fail("suppressions", err)
	}
	for _, x := range docs {
		out[x.Email] = consent.Suppression{Email: x.Email, Until: fromMillis(x.Until), Reason: x.Reason, At: ms(x.At)}
	}
	return out, nil
}

// PurgeEvents implements consent.Store: the oldest events first, through the index on at, in one
// bounded delete. Retention is an admin setting that changes at run time and is counted, which a TTL
// index (one fixed expiry per index) cannot do.
func (db *DB) PurgeEvents(ctx context.Context, before time.Time, limit int) (int, error) {
	old, err := all[struct {
		ID string `bson:"id"`
	}](ctx, db.c("events"), bson.D{{Key: "at", Value: bson.D{{Key: "$lt", Value: before.UnixMilli()}}}},
		options.Find().SetSort(bson.D{{Key: "at", Value: 1}}).SetLimit(int64(limit)).SetProjection(bson.D{{Key: "id", Value: 1}}))
	if err != nil {
		return 0, fail("purge events", err)
	}
	if len(old) == 0 {
		return 0, nil
	}
	ids := make([]string, len(old))
	for i, o := range old {
		ids[i] = o.ID
	}
	res, err := db.c("events").DeleteMany(ctx, bson.D{{Key: "id", Value: bson.D{{Key: "$in", Value: ids}}}})
	if err != nil {
		return 0, fail("purge events", err)
	}
	return int(res.DeletedCount), nil
}

// ForgetConsent implements consent.Store.
func (db *DB) ForgetConsent(ctx context.Context, email, erased string, keep *consent.Entry, a consent.AuditEntry) ([]consent.Count, error) {
	var counts []consent.Count
	err := db.tx(ctx, "forget "+erased, func(ctx context.Context) error {
		counts = nil
		p, err := db.c("follow_preferences").DeleteMany(ctx, bson.D{{Key: "target", Value: email}})
		if err != nil {
			return err
		}
		s, err := db.c("suppressions").DeleteMany(ctx, bson.D{{Key: "email", Value: email}})
		if err != nil {
			return err
		}
		// Audit entries keep what happened, with the address replaced by its hash wherever it appears.
		docs, err := all[bson.M](ctx, db.c("audit_log"), auditHolding(email))
		if err != nil {
			return err
		}
		audited := 0
		for _, doc := range docs {
			set, found := bson.D{}, 0
			for _, f := range []string{"target", "before_value", "after_value"} {
				v, _ := doc[f].(string)
				v, k := consent.ReplaceAddress(v, email, erased) // not inside a longer address: someone else's
				set, found = append(set, bson.E{Key: f, Value: v}), found+k
			}
			if found == 0 {
				continue
			}
			if _, err := db.c("audit_log").UpdateOne(ctx, idFilter(doc["_id"]), bson.D{{Key: "$set", Value: set}}); err != nil {
				return err
			}
			audited++
		}
		counts = []consent.Count{{What: "preferences", N: int(p.DeletedCount)}, {What: "suppressions", N: int(s.DeletedCount)},
			{What: "audit entries", N: audited}}
		if keep != nil {
			if err := db.insertPreferences(ctx, *keep); err != nil {
				return err
			}
		}
		return db.insertAudit(ctx, a)
	})
	if err != nil {
		return nil, err
	}
	return counts, nil
}
