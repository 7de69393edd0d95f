package main

import (
	"bytes"
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/engage-email/engage/alerts"
	"github.com/engage-email/engage/consent"
	"github.com/engage-email/engage/delivery"
	"github.com/engage-email/engage/feed"
	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/inbound"
	"github.com/engage-email/engage/recommend"
	"github.com/engage-email/engage/store/sqlite"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// seed fills a store through the features' own store interfaces, one or more rows in every table.
func seed(t *testing.T, db *sqlite.DB) {
	t.Helper()
	ctx := context.Background()
	m := followed.Message{ID: "m1", Owner: "rep@contoso.com", Subject: "Offer", HTML: "<p>hi</p>", Individual: true, Following: true,
		CreatedAt: t0, Warnings: []string{"w"},
		Recipients: []followed.Recipient{{Email: "ann@fabrikam.com", Kind: followed.KindTo}, {Email: "bob@fabrikam.com", Kind: followed.KindCc}},
		Renders: []followed.Render{{Index: 0, Recipient: 0, Targets: []int{0}, HTML: "<p>a</p>", Tracked: true},
			{Index: 1, Recipient: 1, Targets: []int{1}, HTML: "<p>b</p>", Tracked: true}},
		Links: []followed.Link{{Index: 0, URL: "https://example.com/"}}}
	if err := db.CreateMessage(ctx, m); err != nil {
		t.Fatal(err)
	}
	evs := []followed.Event{
		{ID: "e1", MessageID: "m1", Kind: followed.Opened, At: t0.Add(time.Hour), Recipient: 0, Link: -1},
		{ID: "e2", MessageID: "m1", Kind: followed.LinkClicked, At: t0.Add(2 * time.Hour), Recipient: 1, Link: 0, URL: "https://example.com/"},
	}
	if _, err := db.RecordEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AppendAlerts(ctx, []alerts.Alert{{ID: "a1", Key: "first_open:m1:0", Owner: m.Owner, Kind: alerts.FirstOpen,
		At: t0.Add(time.Hour), MessageID: "m1"}}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateReminder(ctx, alerts.Reminder{ID: "r1", Owner: m.Owner, MessageID: "m1", Condition: alerts.Condition("ANYWAY"),
		DueAt: t0.Add(48 * time.Hour), CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := db.SetAlertPreferences(ctx, m.Owner, alerts.DefaultPreferences); err != nil {
		t.Fatal(err)
	}
	audit := consent.AuditEntry{At: t0, Actor: "admin@contoso.com", Action: consent.ActionPreference, Target: "ann@fabrikam.com"}
	// Bob's DO_NOT_ALLOW, set after m1 was sent to him, stops its tracking (the untracked table).
	if err := db.AddPreferences(ctx, []consent.Entry{{Target: "ann@fabrikam.com", Preference: consent.Allow, At: t0, By: "admin@contoso.com",
		Source: consent.SourceAdmin}, {Target: "bob@fabrikam.com", Preference: consent.DoNotAllow, At: t0, By: "admin@contoso.com",
		Source: consent.SourceAdmin}}, []consent.AuditEntry{audit}); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveSettings(ctx, consent.DefaultSettings(), audit); err != nil {
		t.Fatal(err)
	}
	if err := db.AddSuppression(ctx, consent.Suppression{Email: "gone@fabrikam.com", Reason: "BOUNCED", At: t0}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateTemplate(ctx, recommend.Template{ID: "t1", Owner: m.Owner, Name: "Intro", Subject: "Hi", HTML: "<p>x</p>",
		Category: "intro", CreatedAt: t0, UpdatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := db.RecordOutcome(ctx, m.Owner, "m1", recommend.OutcomeWon, t0); err != nil {
		t.Fatal(err)
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SaveProfile(ctx, recommend.Profile{Recipient: "ann@fabrikam.com", Location: berlin, Source: recommend.SourceProfile}, t0); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateJob(ctx, delivery.Job{MessageID: "m1", Owner: m.Owner, Status: delivery.StatusScheduled, DueAt: t0, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ClaimDueJobs(ctx, "i1", t0, time.Minute, 1); err != nil {
		t.Fatal(err)
	}
	if err := db.RecordDraft(ctx, "i1", delivery.RenderSend{MessageID: "m1", Render: 0, DraftID: "d1", InternetMessageID: "<x@y>"}); err != nil {
		t.Fatal(err)
	}
	if err := db.AddOutboxDraft(ctx, delivery.OutboxEntry{ID: "o1", From: m.Owner, To: []delivery.Address{{Email: "ann@fabrikam.com"}},
		Subject: "Offer", HTML: "<p>a</p>", Headers: map[string]string{}, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	seedInboundAndFeed(t, db)
}

// seedInboundAndFeed fills the inbound mail and response feed tables.
func seedInboundAndFeed(t *testing.T, db *sqlite.DB) {
	t.Helper()
	ctx := context.Background()
	if err := db.EnqueueInbound(ctx, []inbound.Item{{ID: "n1", Kind: inbound.ItemRaw, Mailbox: "rep@contoso.com",
		Raw: []byte("From: ann@fabrikam.com\r\n\r\nthanks"), EnqueuedAt: t0}}); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveInboxSubscription(ctx, inbound.Subscription{ID: "s1", Mailbox: "rep@contoso.com", ClientState: "secret",
		ExpiresAt: t0.Add(72 * time.Hour), CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveDeltaLink(ctx, "rep@contoso.com", "https://graph.example/delta?token=1"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddSoftBounce(ctx, "bob@fabrikam.com", "b1", t0); err != nil {
		t.Fatal(err)
	}
	ep := feed.Endpoint{ID: "ep1", URL: "https://crm.fabrikam.com/hook", Secret: "s3cret", Categories: []feed.Category{feed.Open},
		Interval: time.Minute, CreatedBy: "admin@contoso.com", CreatedAt: t0, UpdatedBy: "admin@contoso.com", UpdatedAt: t0,
		State: feed.State{NextAt: t0}}
	if err := db.CreateEndpoint(ctx, ep); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ClaimEndpoint(ctx, "ep1", "seed", t0, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveState(ctx, "ep1", "seed", feed.State{Cursor: 1, NextAt: t0.Add(time.Minute)}, &feed.Delivery{ID: "dl1", Key: "k1",
		Attempt: 1, At: t0, Outcome: feed.Delivered, StatusCode: 200, Records: 1, First: 1, Last: 1}); err != nil {
		t.Fatal(err)
	}
}

// unseeded are tables of features whose store interface is still being built; the copy covers them
// all the same, since it goes table by table.
var unseeded = map[string]bool{"attachments": true}

func TestCopyEmbeddedToEmbedded(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	srcPath, dstPath := filepath.Join(dir, "src.db"), filepath.Join(dir, "dst.db")
	src, err := sqlite.Open(ctx, srcPath, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	seed(t, src)
	src.Close()

	var out bytes.Buffer
	if err := run(ctx, []string{"-from", "sqlite:" + srcPath, "-to", "sqlite:" + dstPath, "-batch", "1"}, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "every count matches") {
		t.Fatalf("no verification line:\n%s", out.String())
	}

	src, err = sqlite.Open(ctx, srcPath, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := sqlite.Open(ctx, dstPath, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	tables, err := src.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		t.Run(tb, func(t *testing.T) {
			n, err := src.Count(ctx, tb)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 && !unseeded[tb] {
				t.Fatalf("the seed left %s empty, so its copy is not checked", tb)
			}
			if !strings.Contains(out.String(), tb) {
				t.Errorf("the report does not name %s", tb)
			}
		})
	}
	// The copy reads back alike through the stores' own interfaces.
	want, err := src.Message(ctx, "m1")
	if err != nil {
		t.Fatal(err)
	}
	if want.Counters.Opens == 0 || want.Counters.Clicks == 0 {
		t.Fatalf("the seed left m1's counters at zero, so their copy is not checked: %+v", want.Counters)
	}
	got, err := dst.Message(ctx, "m1")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("message differs after copy:\n got %+v\nwant %+v", got, want)
	}
	// Sequences continue after the copied ones: a new alert follows the old, and first opens stay claimed.
	stored, err := dst.AppendAlerts(ctx, []alerts.Alert{{ID: "a2", Key: "k2", Owner: "rep@contoso.com", Kind: alerts.FirstOpen, At: t0}})
	if err != nil || len(stored) != 1 || stored[0].Seq != 2 {
		t.Fatalf("alert after copy: %+v, %v; want seq 2", stored, err)
	}
	firsts, err := dst.RecordEvents(ctx, []followed.Event{{ID: "e3", MessageID: "m1", Kind: followed.Opened, At: t0.Add(3 * time.Hour), Link: -1}})
	if err != nil || len(firsts) != 0 {
		t.Fatalf("a second open of a copied message was first again: %+v, %v", firsts, err)
	}
}

func TestCopyRefuses(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	full := filepath.Join(dir, "full.db")
	db, err := sqlite.Open(ctx, full, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	seed(t, db)
	db.Close()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no flags", nil, "usage"},
		{"unknown scheme", []string{"-from", "postgres://x", "-to", "sqlite:" + filepath.Join(dir, "x.db")}, "want sqlite:"},
		{"missing source", []string{"-from", "sqlite:" + filepath.Join(dir, "none.db"), "-to", "sqlite:" + filepath.Join(dir, "y.db")}, "source"},
		{"destination not empty", []string{"-from", "sqlite:" + full, "-to", "sqlite:" + full}, "already holds"},
		{"bad mongodb uri", []string{"-from", "sqlite:" + full, "-to", "mongodb://%zz"}, "connection string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(ctx, tc.args, &out)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			}
		})
	}
	// -force finishes a copy cut short: copying twice leaves one of everything.
	dst := filepath.Join(dir, "again.db")
	for i := range 2 {
		args := []string{"-from", "sqlite:" + full, "-to", "sqlite:" + dst}
		if i > 0 {
			args = append(args, "-force")
		}
		var out bytes.Buffer
		if err := run(ctx, args, &out); err != nil {
			t.Fatalf("copy %d: %v\n%s", i, err, out.String())
		}
	}
}
