package sqlite_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/engage-email/engage/alerts"
	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/store/sqlite"
)

// BenchmarkUnannouncedFirstOpens is the steady-state cost of one recovery sweep over a 24-hour window
// holding 20,000 messages, each opened by a person three times (once first) and once by a machine,
// every first open already announced: what the alerts service pays once a minute.
func BenchmarkUnannouncedFirstOpens(b *testing.B) {
	ctx := context.Background()
	db := sqlite.OpenTemp(b)
	const messages = 20_000
	now := time.Now().UTC().Truncate(time.Millisecond)
	var evs []followed.Event
	var as []alerts.Alert
	flush := func() {
		if _, err := db.RecordEvents(ctx, evs); err != nil {
			b.Fatal(err)
		}
		if _, err := db.AppendAlerts(ctx, as); err != nil {
			b.Fatal(err)
		}
		evs, as = evs[:0], as[:0]
	}
	for i := range messages {
		id := fmt.Sprintf("m%05d", i)
		if err := db.CreateMessage(ctx, followed.Message{ID: id, Owner: "rep@org.example", Subject: "S", HTML: "x",
			Individual: true, Following: true, CreatedAt: now.Add(-25 * time.Hour), Warnings: []string{},
			Recipients: []followed.Recipient{{Email: "p@d.example", Kind: followed.KindTo}},
			Renders:    []followed.Render{{Index: 0, Recipient: 0, Targets: []int{0}, HTML: "x", Tracked: true}}}); err != nil {
			b.Fatal(err)
		}
		at := now.Add(-time.Duration(i) * 4 * time.Second)
		for j := range 4 {
			evs = append(evs, followed.Event{ID: fmt.Sprintf("e%05d-%d", i, j), MessageID: id, Kind: followed.Opened,
				At: at.Add(time.Duration(j) * time.Second), Link: -1, Machine: j == 3})
		}
		as = append(as, alerts.Alert{ID: "a" + id, Key: alerts.FirstOpenKey(id, 0), Owner: "rep@org.example", Kind: alerts.FirstOpen,
			At: at, MessageID: id})
		if len(evs) >= 400 {
			flush()
		}
	}
	flush()
	since := now.Add(-24 * time.Hour)
	for b.Loop() {
		got, err := db.UnannouncedFirstOpens(ctx, since, 500)
		if err != nil || len(got) != 0 {
			b.Fatalf("got %d, err %v", len(got), err)
		}
	}
}

// BenchmarkEngagements is one page of the engagement-alert reader over 1,000 tracking events after its
// cursor, as a second of tracking traffic holds them: 19 opens to each click, over 100 messages of
// 16 KiB, whose owner has asked for click alerts or has not (the default). The alerts service reads
// such pages every second while hits arrive.
func BenchmarkEngagements(b *testing.B) {
	for _, c := range []struct {
		name   string
		prefs  *alerts.Preferences
		clicks int
	}{{"clicks wanted", &alerts.Preferences{ReplyReceived: true, LinkClicked: true}, 50}, {"defaults", nil, 0}} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			db := sqlite.OpenTemp(b)
			msgs := benchMessagesOf(b, db, 100, "<p>"+strings.Repeat("x", 16<<10)+"</p>")
			if c.prefs != nil {
				if err := db.SetAlertPreferences(ctx, "rep@contoso.com", *c.prefs); err != nil {
					b.Fatal(err)
				}
			}
			at := time.Now()
			evs := make([]followed.Event, 1000)
			for i := range evs {
				evs[i] = followed.Event{ID: followed.NewID(at), MessageID: msgs[i%len(msgs)], Kind: followed.Opened, At: at,
					Recipient: 0, Link: -1, IP: "192.0.2.1", UserAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64)", Method: "GET"}
				if i%20 == 0 {
					evs[i].Kind, evs[i].Link, evs[i].URL = followed.LinkClicked, 0, "https://example.com/a"
				}
			}
			if _, err := db.RecordEvents(ctx, evs); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				got, through, err := db.Engagements(ctx, 1000)
				if err != nil || len(got) != c.clicks || through == 0 {
					b.Fatalf("%d engagements through %d, err %v; want %d", len(got), through, err, c.clicks)
				}
			}
		})
	}
}
