package storetest

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/engage-email/engage/attachments"
	"github.com/engage-email/engage/consent"
	"github.com/engage-email/engage/followed"
)

func audit(action, target, before, after string) consent.AuditEntry {
	return consent.AuditEntry{At: t0, Actor: "admin@contoso.com", Action: action, Target: target, Before: before, After: after}
}

func pref(target string, p consent.Preference, at time.Time) consent.Entry {
	return consent.Entry{Target: target, Preference: p, At: at, By: "admin@contoso.com", Source: consent.SourceAdmin}
}

func runConsent(t *testing.T, open func(t *testing.T) Stores) {
	ctx := context.Background()

	t.Run("settings round trip and audit", func(t *testing.T) {
		s := open(t).Consent
		if _, err := s.Settings(ctx); !errors.Is(err, followed.ErrNotFound) {
			t.Fatalf("fresh settings: err = %v, want ErrNotFound", err)
		}
		want := consent.Settings{Enabled: true, TrackLinks: true, AttachmentSharing: consent.ShareAnyone, RetentionDays: 30,
			IPStorage: followed.IPNone, RequireConsent: true}
		for range 2 { // saving twice replaces
			if err := s.SaveSettings(ctx, want, audit(consent.ActionSettings, "settings", "a", "b")); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.Settings(ctx)
		if err != nil || got != want {
			t.Fatalf("settings %+v (%v), want %+v", got, err, want)
		}
		log, err := s.Audit(ctx, consent.AuditQuery{Limit: 10})
		if err != nil || len(log) != 2 || log[0].Seq <= log[1].Seq || log[0].After != "b" || !log[0].At.Equal(t0) {
			t.Fatalf("audit %+v (%v)", log, err)
		}
		older, err := s.Audit(ctx, consent.AuditQuery{BeforeSeq: log[0].Seq, Limit: 10})
		if err != nil || len(older) != 1 || older[0].Seq != log[1].Seq {
			t.Fatalf("audit before %d: %+v (%v)", log[0].Seq, older, err)
		}
	})

	t.Run("latest preference wins, history kept", func(t *testing.T) {
		s := open(t).Consent
		// Two entries in one millisecond: the later recorded is the one in force.
		batches := [][]consent.Entry{
			{pref("ann@x.com", consent.Allow, t0), pref("x.com", consent.DoNotAllow, t0)},
			{pref("ann@x.com", consent.DoNotAllow, t0.Add(time.Hour))},
			{pref("ann@x.com", consent.Allow, t0.Add(time.Hour))},
		}
		for _, b := range batches {
			var as []consent.AuditEntry
			for _, e := range b {
				as = append(as, audit(consent.ActionPreference, e.Target, "", string(e.Preference)))
			}
			if err := s.AddPreferences(ctx, b, as); err != nil {
				t.Fatal(err)
			}
		}
		latest, err := s.LatestPreferences(ctx, []string{"ann@x.com", "x.com", "nobody@y.com"})
		if err != nil {
			t.Fatal(err)
		}
		if len(latest) != 2 || latest["ann@x.com"].Preference != consent.Allow || latest["x.com"].Preference != consent.DoNotAllow {
			t.Fatalf("latest %+v", latest)
		}
		h, err := s.PreferenceHistory(ctx, "ann@x.com")
		if err != nil {
			t.Fatal(err)
		}
		var got []consent.Preference
		for _, e := range h {
			got = append(got, e.Preference)
		}
		if want := []consent.Preference{consent.Allow, consent.DoNotAllow, consent.Allow}; !reflect.DeepEqual(got, want) {
			t.Fatalf("history %v, want %v", got, want)
		}
		if log, _ := s.Audit(ctx, consent.AuditQuery{Target: "ann@x.com", Limit: 10}); len(log) != 3 {
			t.Fatalf("audit of ann: %+v", log)
		}
	})

	t.Run("a failing batch records nothing", func(t *testing.T) {
		s := open(t).Consent
		bad := pref("b@x.com", consent.Preference("MAYBE"), t0) // the store's own check refuses it
		err := s.AddPreferences(ctx, []consent.Entry{pref("a@x.com", consent.Allow, t0), bad},
			[]consent.AuditEntry{audit(consent.ActionImport, "a@x.com", "", "ALLOW")})
		if err == nil {
			t.Fatal("a preference outside ALLOW/DO_NOT_ALLOW was stored")
		}
		latest, _ := s.LatestPreferences(ctx, []string{"a@x.com"})
		log, _ := s.Audit(ctx, consent.AuditQuery{Limit: 10})
		if len(latest) != 0 || len(log) != 0 {
			t.Fatalf("half applied: %+v %+v", latest, log)
		}
	})

	t.Run("suppressions", func(t *testing.T) {
		s := open(t).Consent
		until := t0.Add(24 * time.Hour)
		for _, sup := range []consent.Suppression{{Email: "a@x.com", Reason: "5.1.1", At: t0},
			{Email: "b@x.com", Until: until, Reason: "4.2.2", At: t0}} {
			if err := s.AddSuppression(ctx, sup); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.Suppressions(ctx, []string{"a@x.com", "b@x.com", "c@x.com"})
		if err != nil || len(got) != 2 || !got["a@x.com"].Until.IsZero() || !got["b@x.com"].Until.Equal(until) {
			t.Fatalf("suppressions %+v (%v)", got, err)
		}
		if !got["b@x.com"].Active(t0) || got["b@x.com"].Active(until) {
			t.Fatal("a suppression is active until, not at or after, its end")
		}
		if err := s.LiftSuppression(ctx, "a@x.com", audit(consent.ActionLiftSuppressed, "a@x.com", "x", "")); err != nil {
			t.Fatal(err)
		}
		if err := s.LiftSuppression(ctx, "a@x.com", audit(consent.ActionLiftSuppressed, "a@x.com", "x", "")); !errors.Is(err, followed.ErrNotFound) {
			t.Fatalf("lifting twice: err = %v, want ErrNotFound", err)
		}
		if log, _ := s.Audit(ctx, consent.AuditQuery{Limit: 10}); len(log) != 1 {
			t.Fatalf("a failed lift was audited: %+v", log)
		}
	})

	t.Run("purge deletes old events in batches and keeps counters", func(t *testing.T) {
		st := open(t)
		mustCreate(t, st.Followed, message("m", "rep@contoso.com", "Old", t0, false, "a@x.com"))
		var evs []followed.Event
		for i := range 7 {
			evs = append(evs, event(string(rune('a'+i)), "m", followed.Opened, t0.Add(time.Duration(i)*24*time.Hour), followed.Shared, -1))
		}
		if _, err := st.Followed.RecordEvents(ctx, evs); err != nil {
			t.Fatal(err)
		}
		cutoff := t0.Add(5 * 24 * time.Hour) // events a-e are older
		total := 0
		for _, want := range []int{2, 2, 1, 0} {
			n, err := st.Consent.PurgeEvents(ctx, cutoff, 2)
			if err != nil || n != want {
				t.Fatalf("purge: %d (%v), want %d", n, err, want)
			}
			total += n
		}
		left, _ := st.Followed.Events(ctx, followed.EventQuery{MessageID: "m", Limit: 10})
		if total != 5 || len(left) != 2 || left[1].ID != "f" {
			t.Fatalf("left %+v", left)
		}
		if m, _ := st.Followed.Message(ctx, "m"); m.Counters.Opens != 7 {
			t.Fatalf("purge moved counters: %+v", m.Counters)
		}
	})

	t.Run("update renders keeps counters", func(t *testing.T) {
		s := open(t).Followed
		m := message("m", "rep@contoso.com", "Deal", t0, true, "a@x.com", "b@y.com")
		mustCreate(t, s, m)
		if _, err := s.RecordEvents(ctx, []followed.Event{event("c1", "m", followed.LinkClicked, t0, 0, 0),
			event("c2", "m", followed.LinkClicked, t0, 0, 1)}); err != nil {
			t.Fatal(err)
		}
		m.Following, m.NotFollowedReason, m.Warnings = false, "Not followed: b@y.com (DO_NOT_ALLOW).", []string{"w"}
		m.Renders = []followed.Render{{Index: 0, Recipient: followed.Shared, Targets: []int{0, 1}, HTML: "plain"}}
		m.Links = []followed.Link{{Index: 0, URL: "https://example.com/a"}}
		if err := s.UpdateRenders(ctx, m); err != nil {
			t.Fatal(err)
		}
		got, err := s.Message(ctx, "m")
		if err != nil {
			t.Fatal(err)
		}
		if got.Following || got.NotFollowedReason != m.NotFollowedReason || !reflect.DeepEqual(got.Renders, m.Renders) ||
			len(got.Links) != 1 || got.Links[0].Clicks != 1 || got.Counters.Clicks != 2 || !reflect.DeepEqual(got.Warnings, []string{"w"}) {
			t.Fatalf("after update: %+v", got)
		}
		// A changed URL is a different link, and a link dropped and added again starts from nothing.
		m.Links = []followed.Link{{Index: 0, URL: "https://example.com/changed"}, {Index: 1, URL: "https://example.com/new"}}
		if err := s.UpdateRenders(ctx, m); err != nil {
			t.Fatal(err)
		}
		got, err = s.Message(ctx, "m")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Links, m.Links) || got.Counters.Clicks != 2 {
			t.Fatalf("after links changed: links %+v, counters %+v", got.Links, got.Counters)
		}
		m.ID = "absent"
		if err := s.UpdateRenders(ctx, m); !errors.Is(err, followed.ErrNotFound) {
			t.Fatalf("absent message: err = %v, want ErrNotFound", err)
		}
	})

	t.Run("forget leaves no trace of the address", func(t *testing.T) {
		st := open(t)
		const ann = "ann@fabrikam.com"
		indiv := message("i", "rep@contoso.com", "Hi "+ann, t0, true, ann, "bob@fabrikam.com")
		indiv.HTML = "<p>Dear ANN@Fabrikam.com, see https://x.example/?u=" + ann + "</p>"
		indiv.Links = []followed.Link{{Index: 0, URL: "https://x.example/?u=" + ann}}
		alone := message("s", "rep@contoso.com", "Solo", t0, false, ann)
		// Jo Ann's address holds Ann's: forgetting Ann leaves it whole.
		other := message("o", "rep@contoso.com", "Other", t0, true, "bob@fabrikam.com")
		other.HTML = "<p>Ask joann@fabrikam.com</p>"
		mustCreate(t, st.Followed, indiv, alone, other)
		// A file named for its recipient, and one named for someone else.
		for _, a := range []attachments.Attachment{attachment("f1", "i", "Quote for "+ann+".pdf", true),
			attachment("f2", "o", "Quote for joann@fabrikam.com.pdf", true)} {
			if _, err := st.Attachments.AddAttachment(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := st.Followed.RecordEvents(ctx, []followed.Event{
			event("e1", "i", followed.Opened, t0, 0, -1), event("e2", "i", followed.Opened, t0, 1, -1),
			event("e3", "s", followed.Opened, t0, followed.Shared, -1), event("e4", "o", followed.Opened, t0, 0, -1),
		}); err != nil {
			t.Fatal(err)
		}
		data, err := st.FollowedEraser.RecipientData(ctx, ann)
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[string]int{}
		for _, r := range data {
			kinds[r.Kind]++
		}
		if kinds["recipient"] != 2 || kinds["event"] != 2 {
			t.Fatalf("recipient data %v", kinds)
		}
		counts, err := st.FollowedEraser.ForgetRecipient(ctx, ann)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for _, c := range counts {
			got[c.What] = c.N
		}
		if got["recipients"] != 2 || got["events"] != 2 || got["audience"] != 2 {
			t.Fatalf("counts %v", got)
		}
		m, _ := st.Followed.Message(ctx, "i")
		if strings.Contains(strings.ToLower(m.HTML+m.Subject+m.Links[0].URL+m.Recipients[0].Email), ann) ||
			m.Recipients[1].Email != "bob@fabrikam.com" || m.Counters.Opens != 2 {
			t.Fatalf("after forget: %+v", m)
		}
		if o, _ := st.Followed.Message(ctx, "o"); o.HTML != other.HTML {
			t.Fatalf("another person's address was blanked: %q", o.HTML)
		}
		for id, want := range map[string]string{"f1": "Quote for [erased].pdf", "f2": "Quote for joann@fabrikam.com.pdf"} {
			if a, err := st.Attachments.Attachment(ctx, id); err != nil || a.Name != want {
				t.Fatalf("attachment %s after forget: %q, %v; want %q", id, a.Name, err, want)
			}
		}
		if evs, _ := st.Followed.Events(ctx, followed.EventQuery{MessageID: "i", Limit: 10}); len(evs) != 1 || evs[0].ID != "e2" {
			t.Fatalf("bob's events lost or ann's kept: %+v", evs)
		}
		if data, _ := st.FollowedEraser.RecipientData(ctx, ann); len(data) != 0 {
			t.Fatalf("data left: %+v", data)
		}
		again, err := st.FollowedEraser.ForgetRecipient(ctx, ann)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range again {
			if c.N != 0 {
				t.Fatalf("a second erasure changed %v", again)
			}
		}
	})

	t.Run("forget consent keeps the objection as a hash", func(t *testing.T) {
		s := open(t).Consent
		const ann, joann = "ann@x.com", "joann@x.com" // Jo Ann's address holds Ann's: hers must stay
		if err := s.AddPreferences(ctx, []consent.Entry{pref(ann, consent.DoNotAllow, t0), pref(joann, consent.Allow, t0)},
			[]consent.AuditEntry{audit(consent.ActionPreference, ann, "", "DO_NOT_ALLOW"), audit(consent.ActionPreference, joann, "", "ALLOW")}); err != nil {
			t.Fatal(err)
		}
		if err := s.AddSuppression(ctx, consent.Suppression{Email: ann, Reason: "bounce", At: t0}); err != nil {
			t.Fatal(err)
		}
		erased := consent.ErasedTarget(ann)
		keep := pref(erased, consent.DoNotAllow, t0)
		counts, err := s.ForgetConsent(ctx, ann, erased, &keep, audit(consent.ActionForget, erased, "", ""))
		if err != nil {
			t.Fatal(err)
		}
		if want := []consent.Count{{What: "preferences", N: 1}, {What: "suppressions", N: 1}, {What: "audit entries", N: 1}}; !reflect.DeepEqual(counts, want) {
			t.Fatalf("counts %v, want %v", counts, want)
		}
		latest, _ := s.LatestPreferences(ctx, []string{ann, erased, joann})
		sups, _ := s.Suppressions(ctx, []string{ann})
		log, _ := s.Audit(ctx, consent.AuditQuery{Limit: 10})
		if _, ok := latest[ann]; ok || latest[erased].Preference != consent.DoNotAllow || len(sups) != 0 {
			t.Fatalf("after forget: %+v %+v", latest, sups)
		}
		joanns := 0
		for _, a := range log {
			if a.Target == joann {
				joanns++
				continue
			}
			if strings.Contains(a.Target+a.Before+a.After, ann) {
				t.Fatalf("audit still names the address: %+v", a)
			}
		}
		if joanns != 1 || latest[joann].Preference != consent.Allow {
			t.Fatalf("Jo Ann's audit entries %d, preference %+v: want her entry and preference as they were", joanns, latest[joann])
		}
	})
}
