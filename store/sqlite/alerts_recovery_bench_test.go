package sqlite_test

import (
	"context"
	"fmt"
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
