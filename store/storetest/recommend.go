package storetest

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/recommend"
)

// RecommendStore is everything the recommend feature needs from a backend, on the database Followed
// writes to (histograms are read from followed messages and events).
type RecommendStore interface {
	recommend.Store
	recommend.TemplateStore
	recommend.Templates
	recommend.Outcomes
	recommend.ProfileSaver
	recommend.ColleagueStore
}

func runRecommend(t *testing.T, open func(t *testing.T) Stores) {
	ctx := context.Background()
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

	// t0 is a Monday 09:00 UTC: bucket 9 in UTC, 10 in Berlin, 18 in Tokyo.
	seed := func(t *testing.T) Stores {
		st := open(t)
		shared := message("m2", "rep@contoso.com", "Shared", t0, false, "solo@fabrikam.com")
		group := message("m3", "rep@contoso.com", "Group", t0, false, "ann@fabrikam.com", "bob@fabrikam.com")
		untracked := message("m4", "rep@contoso.com", "Untracked", t0, true, "ann@fabrikam.com")
		untracked.Following = false
		mustCreate(t, st.Followed, message("m1", "rep@contoso.com", "Hello", t0, true, "ann@fabrikam.com", "bob@fabrikam.com"),
			shared, group, untracked)
		evs := []followed.Event{
			event("e1", "m1", followed.Opened, t0.Add(time.Minute), 0, -1),     // ann's privacy proxy
			event("e2", "m1", followed.Opened, t0.Add(5*time.Hour), 0, -1),     // ann herself
			event("e3", "m1", followed.LinkClicked, t0.Add(2*time.Hour), 1, 0), // bob's first engagement
			event("e4", "m1", followed.Replied, t0.Add(30*time.Hour), 1, -1),
			event("e5", "m2", followed.Opened, t0.Add(3*time.Hour), followed.Shared, -1),
			event("e6", "m3", followed.Opened, t0.Add(4*time.Hour), followed.Shared, -1), // names nobody
			event("e7", "m4", followed.Opened, t0.Add(4*time.Hour), 0, -1),
		}
		evs[0].Machine, evs[0].Reason = true, "PROXY"
		if _, err := st.Followed.RecordEvents(ctx, evs); err != nil {
			t.Fatalf("record events: %v", err)
		}
		return st
	}

	t.Run("recipient histograms are UTC, human and first engagement only", func(t *testing.T) {
		st := seed(t)
		engs, err := st.Recommend.RecipientEngagement(ctx, "rep@contoso.com", []string{"Ann@Fabrikam.com", "bob@fabrikam.com", "solo@fabrikam.com", "nobody@x.com"})
		if err != nil {
			t.Fatal(err)
		}
		by := map[string]recommend.Engagement{}
		for _, e := range engs {
			by[e.Recipient] = e
		}
		none := time.Time{}
		tests := []struct {
			addr       string
			sent       float64
			engagedAt  int
			engaged    float64
			present    bool
			deliveries []recommend.Delivery // sorted by engagement, unengaged first
		}{
			{"ann@fabrikam.com", 2, 14, recommend.Credit(5 * time.Hour), true, []recommend.Delivery{{Sent: t0, Engaged: none}, {Sent: t0, Engaged: t0.Add(5 * time.Hour)}}},
			{"bob@fabrikam.com", 2, 11, recommend.Credit(2 * time.Hour), true, []recommend.Delivery{{Sent: t0, Engaged: none}, {Sent: t0, Engaged: t0.Add(2 * time.Hour)}}},
			{"solo@fabrikam.com", 1, 12, recommend.Credit(3 * time.Hour), true, []recommend.Delivery{{Sent: t0, Engaged: t0.Add(3 * time.Hour)}}},
			{"nobody@x.com", 0, 0, 0, false, nil},
		}
		for _, tc := range tests {
			t.Run(tc.addr, func(t *testing.T) {
				e, ok := by[tc.addr]
				if ok != tc.present {
					t.Fatalf("present = %v, want %v", ok, tc.present)
				}
				sent, engaged := e.Totals()
				if sent != tc.sent || e.Sent[9] != tc.sent {
					t.Errorf("sent = %v (bucket 9: %v), want %v at Monday 09:00 UTC", sent, e.Sent[9], tc.sent)
				}
				if !near(engaged, tc.engaged) || !near(e.Engaged[tc.engagedAt], tc.engaged) {
					t.Errorf("engaged = %v (bucket %d: %v), want %v", engaged, tc.engagedAt, e.Engaged[tc.engagedAt], tc.engaged)
				}
				got := slices.SortedFunc(slices.Values(e.Deliveries), func(a, b recommend.Delivery) int { return a.Engaged.Compare(b.Engaged) })
				if !slices.EqualFunc(got, tc.deliveries, func(a, b recommend.Delivery) bool {
					return a.Sent.Equal(b.Sent) && a.Engaged.Equal(b.Engaged)
				}) {
					t.Errorf("deliveries = %v, want %v: the model places each in the recipient's zone at its own instant", got, tc.deliveries)
				}
			})
		}
	})

	t.Run("domain and organisation histograms are local time, profiled members only", func(t *testing.T) {
		st := seed(t)
		for _, p := range []recommend.Profile{
			{Recipient: "ann@fabrikam.com", Location: berlin, Source: recommend.SourceProfile},
			{Recipient: "solo@fabrikam.com", Location: tokyo, Source: recommend.SourceMailbox},
		} {
			if err := st.Recommend.SaveProfile(ctx, p, t0); err != nil {
				t.Fatalf("save profile: %v", err)
			}
		}
		doms, err := st.Recommend.DomainEngagement(ctx, []string{"fabrikam.com", "nowhere.com"})
		if err != nil {
			t.Fatal(err)
		}
		org, err := st.Recommend.OrgEngagement(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := doms["nowhere.com"]; ok {
			t.Errorf("a domain with no history is present")
		}
		for name, e := range map[string]recommend.Engagement{"domain": doms["fabrikam.com"], "organisation": org} {
			sent, engaged := e.Totals()
			// ann: two sends at Berlin 10:00, engaged 19:00 Berlin; solo: one send at Tokyo 18:00, read 21:00.
			want := recommend.Credit(5*time.Hour) + recommend.Credit(3*time.Hour)
			if sent != 3 || e.Sent[10] != 2 || e.Sent[18] != 1 {
				t.Errorf("%s: sent %v, buckets 10: %v, 18: %v; want 2 in Berlin's 10:00 and 1 in Tokyo's 18:00", name, sent, e.Sent[10], e.Sent[18])
			}
			if !near(engaged, want) || !near(e.Engaged[15], recommend.Credit(5*time.Hour)) || !near(e.Engaged[21], recommend.Credit(3*time.Hour)) {
				t.Errorf("%s: engaged %v (15: %v, 21: %v), want %v in local hours", name, engaged, e.Engaged[15], e.Engaged[21], want)
			}
		}
		zones, err := st.Recommend.DomainZones(ctx, []string{"fabrikam.com", "nowhere.com"})
		if err != nil {
			t.Fatal(err)
		}
		if z := zones["fabrikam.com"]; z == nil || z.String() != "Asia/Tokyo" || len(zones) != 1 {
			t.Errorf("domain zones = %v, want fabrikam.com in Asia/Tokyo (a tie broken by name)", zones)
		}
		profiles, err := st.Recommend.Profiles(ctx, []string{"ann@fabrikam.com", "bob@fabrikam.com"})
		if err != nil {
			t.Fatal(err)
		}
		if p := profiles["ann@fabrikam.com"]; len(profiles) != 1 || p.Location.String() != "Europe/Berlin" || p.Source != recommend.SourceProfile {
			t.Errorf("profiles = %+v, want ann in Europe/Berlin from her profile", profiles)
		}
	})

	t.Run("bad profiles are refused and change nothing", func(t *testing.T) {
		st := open(t)
		tests := []struct {
			name string
			p    recommend.Profile
		}{
			{"no zone", recommend.Profile{Recipient: "a@x.com", Source: recommend.SourceProfile}},
			{"unnamed zone", recommend.Profile{Recipient: "a@x.com", Location: time.FixedZone("", 3600), Source: recommend.SourceProfile}},
			{"inferred is not stored", recommend.Profile{Recipient: "a@x.com", Location: berlin, Source: recommend.SourceInferred}},
			{"not an address", recommend.Profile{Recipient: "nobody", Location: berlin, Source: recommend.SourceProfile}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if err := st.Recommend.SaveProfile(ctx, tc.p, t0); !errors.Is(err, recommend.ErrBadInput) {
					t.Errorf("error = %v, want ErrBadInput", err)
				}
			})
		}
		if got, err := st.Recommend.Profiles(ctx, []string{"a@x.com", "nobody"}); err != nil || len(got) != 0 {
			t.Errorf("profiles after refusals = %v, %v; want none", got, err)
		}
	})

	t.Run("only mail that went out counts, at its send time", func(t *testing.T) { runSentOnly(t, open) })

	t.Run("colleagues without a fresh mailbox zone", func(t *testing.T) { runColleagues(t, open, berlin) })

	t.Run("templates round trip", func(t *testing.T) {
		s := open(t).Recommend
		a := recommend.Template{ID: "t1", Owner: "rep@contoso.com", Name: "Intro", Subject: "Hi", HTML: "<p>Hi</p>",
			Category: "intro", CreatedAt: t0, UpdatedAt: t0}
		b := a
		b.ID, b.Name, b.Category = "t2", "Follow-up", "follow-up"
		for _, tpl := range []recommend.Template{a, b} {
			if err := s.CreateTemplate(ctx, tpl); err != nil {
				t.Fatalf("create %s: %v", tpl.ID, err)
			}
		}
		if got, err := s.Template(ctx, "t1"); err != nil || got != a {
			t.Errorf("template t1 = %+v, %v; want %+v", got, err, a)
		}
		a.Name, a.UpdatedAt = "Intro v2", t0.Add(time.Hour)
		if err := s.UpdateTemplate(ctx, a); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			category string
			want     []string
		}{{"intro", []string{"Intro v2"}}, {"", []string{"Follow-up", "Intro v2"}}, {"none", nil}}
		for _, tc := range tests {
			t.Run("list "+tc.category, func(t *testing.T) {
				got, err := s.ListTemplates(ctx, tc.category)
				if err != nil || got == nil || len(got) != len(tc.want) {
					t.Fatalf("list = %+v, %v; want %v", got, err, tc.want)
				}
				for i := range got {
					if got[i].Name != tc.want[i] {
						t.Errorf("template %d is %q, want %q", i, got[i].Name, tc.want[i])
					}
				}
			})
		}
		if err := s.DeleteTemplate(ctx, "t2"); err != nil {
			t.Fatal(err)
		}
		missing := []struct {
			name string
			err  error
		}{
			{"get", func() error { _, err := s.Template(ctx, "t2"); return err }()},
			{"update", s.UpdateTemplate(ctx, recommend.Template{ID: "t2", UpdatedAt: t0})},
			{"delete", s.DeleteTemplate(ctx, "t2")},
		}
		for _, m := range missing {
			if !errors.Is(m.err, recommend.ErrNotFound) {
				t.Errorf("%s of a deleted template: %v, want ErrNotFound", m.name, m.err)
			}
		}
	})

	t.Run("template stats count human opens, real replies and outcomes", func(t *testing.T) {
		st := open(t)
		for _, id := range []string{"ta", "tb"} {
			if err := st.Recommend.CreateTemplate(ctx, recommend.Template{ID: id, Owner: "rep@contoso.com", Name: id,
				HTML: "x", Category: "intro", CreatedAt: t0, UpdatedAt: t0}); err != nil {
				t.Fatal(err)
			}
		}
		var ms []followed.Message
		for i, tpl := range []string{"ta", "ta", "ta", "ta", "tb"} {
			m := message(string(rune('a'+i)), "rep@contoso.com", "S", t0, true, "x@y.com")
			m.TemplateID = tpl
			ms = append(ms, m)
		}
		mustCreate(t, st.Followed, ms...)
		evs := []followed.Event{
			event("o1", "a", followed.Opened, t0.Add(time.Hour), 0, -1),
			event("o2", "b", followed.Opened, t0.Add(time.Minute), 0, -1), // machine only
			event("r1", "a", followed.Replied, t0.Add(2*time.Hour), 0, -1),
			event("r2", "c", followed.AutoReplied, t0.Add(2*time.Hour), 0, -1),
		}
		evs[1].Machine = true
		if _, err := st.Followed.RecordEvents(ctx, evs); err != nil {
			t.Fatal(err)
		}
		outcomes := []struct {
			owner, msg string
			o          recommend.Outcome
			err        error
		}{
			{"rep@contoso.com", "a", recommend.OutcomeLost, nil},
			{"rep@contoso.com", "a", recommend.OutcomeWon, nil}, // replaces
			{"rep@contoso.com", "b", recommend.OutcomeLost, nil},
			{"other@contoso.com", "c", recommend.OutcomeWon, recommend.ErrNotFound},
			{"rep@contoso.com", "missing", recommend.OutcomeWon, recommend.ErrNotFound},
		}
		for _, o := range outcomes {
			if err := st.Recommend.RecordOutcome(ctx, o.owner, o.msg, o.o, t0); !errors.Is(err, o.err) && err != o.err {
				t.Errorf("record %s on %s by %s: %v, want %v", o.o, o.msg, o.owner, err, o.err)
			}
		}
		got, err := st.Recommend.TemplateStats(ctx, "intro")
		if err != nil {
			t.Fatal(err)
		}
		want := []recommend.TemplateStats{
			{ID: "ta", Emails: 4, HumanOpened: 1, Replied: 1, Won: 1, Lost: 1},
			{ID: "tb", Emails: 1},
		}
		if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
			t.Errorf("stats = %+v, want %+v", got, want)
		}
		if none, err := st.Recommend.TemplateStats(ctx, "empty"); err != nil || none == nil || len(none) != 0 {
			t.Errorf("stats of an empty category = %v, %v; want an empty slice", none, err)
		}
	})
}

// runColleagues checks the mailbox sync's candidates: recent followed mail only, the tenant's domains
// exactly, no profile or a stale mailbox one (never a salesperson's), distinct, sorted and paged.
func runColleagues(t *testing.T, open func(t *testing.T) Stores, berlin *time.Location) {
	ctx := context.Background()
	st := open(t)
	old := message("c2", "rep@contoso.com", "Old", t0.Add(-40*24*time.Hour), false, "old@contoso.com")
	unfollowed := message("c3", "rep@contoso.com", "Unfollowed", t0, false, "nf@contoso.com")
	unfollowed.Following = false
	mustCreate(t, st.Followed,
		message("c1", "rep@contoso.com", "Team", t0, false, "amy@contoso.com", "bob@contoso.com", "cat@contoso.com",
			"dan@contoso.com", "eve@fabrikam.com", "ivy@sales.contoso.com"),
		old, unfollowed,
		message("c4", "sam@Contoso.FR", "Bonjour", t0.Add(-time.Hour), false, "zed@contoso.fr", "gil@contoso.com", "amy@contoso.com"))
	for _, p := range []struct {
		addr, source string
		at           time.Time
	}{
		{"bob@contoso.com", recommend.SourceMailbox, t0.Add(-10 * 24 * time.Hour)},  // stale: read again
		{"cat@contoso.com", recommend.SourceMailbox, t0.Add(-24 * time.Hour)},       // fresh
		{"dan@contoso.com", recommend.SourceProfile, t0.Add(-100 * 24 * time.Hour)}, // entered: kept
	} {
		if err := st.Recommend.SaveProfile(ctx, recommend.Profile{Recipient: p.addr, Location: berlin, Source: p.source}, p.at); err != nil {
			t.Fatalf("save profile of %s: %v", p.addr, err)
		}
	}
	recent := recommend.ColleagueQuery{Since: t0.Add(-30 * 24 * time.Hour), StaleBefore: t0.Add(-7 * 24 * time.Hour), Limit: 10}
	with := func(edit func(q *recommend.ColleagueQuery)) recommend.ColleagueQuery {
		q := recent
		edit(&q)
		return q
	}
	tests := []struct {
		name string
		q    recommend.ColleagueQuery
		want []string
	}{
		{"senders' domains", recent, []string{"amy@contoso.com", "bob@contoso.com", "gil@contoso.com", "zed@contoso.fr"}},
		{"configured domain", with(func(q *recommend.ColleagueQuery) { q.Domains = []string{"contoso.com"} }),
			[]string{"amy@contoso.com", "bob@contoso.com", "gil@contoso.com"}},
		{"configured domain in any case", with(func(q *recommend.ColleagueQuery) { q.Domains = []string{"Contoso.FR"} }),
			[]string{"zed@contoso.fr"}},
		{"configured domains replace the senders'", with(func(q *recommend.ColleagueQuery) { q.Domains = []string{"fabrikam.com"} }),
			[]string{"eve@fabrikam.com"}},
		{"first page", with(func(q *recommend.ColleagueQuery) { q.Limit = 2 }), []string{"amy@contoso.com", "bob@contoso.com"}},
		{"next page", with(func(q *recommend.ColleagueQuery) { q.Limit, q.After = 2, "bob@contoso.com" }),
			[]string{"gil@contoso.com", "zed@contoso.fr"}},
		{"past the last page", with(func(q *recommend.ColleagueQuery) { q.After = "zed@contoso.fr" }), nil},
		{"fresher threshold keeps bob", with(func(q *recommend.ColleagueQuery) { q.StaleBefore = t0.Add(-11 * 24 * time.Hour) }),
			[]string{"amy@contoso.com", "gil@contoso.com", "zed@contoso.fr"}},
		{"older window reaches old mail", with(func(q *recommend.ColleagueQuery) {
			q.Since, q.Domains = t0.Add(-50*24*time.Hour), []string{"contoso.com"}
		}), []string{"amy@contoso.com", "bob@contoso.com", "gil@contoso.com", "old@contoso.com"}},
		{"nothing recent", with(func(q *recommend.ColleagueQuery) { q.Since = t0.Add(time.Hour) }), nil},
		{"no limit", with(func(q *recommend.ColleagueQuery) { q.Limit = 0 }), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := st.Recommend.Colleagues(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) || (len(got) > 0 && !slices.Equal(got, tc.want)) {
				t.Errorf("colleagues = %q, want %q", got, tc.want)
			}
		})
	}
}
