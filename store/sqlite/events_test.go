package sqlite_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/store/sqlite"
)

// benchMessagesOf creates n shared messages with two links each and the given HTML, and returns their
// ids; tests use it too.
func benchMessagesOf(tb testing.TB, db *sqlite.DB, n int, html string) []string {
	tb.Helper()
	now := time.Now()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = followed.NewID(now)
		m := followed.Message{ID: ids[i], Owner: "rep@contoso.com", Subject: "Bench", HTML: html, Following: true,
			CreatedAt: now, Warnings: []string{},
			Recipients: []followed.Recipient{{Email: "a@x.com", Kind: followed.KindTo}},
			Renders:    []followed.Render{{Index: 0, Recipient: followed.Shared, Targets: []int{0}, HTML: "r", Tracked: true}},
			Links:      []followed.Link{{Index: 0, URL: "https://example.com/a"}, {Index: 1, URL: "https://example.com/b"}}}
		if err := db.CreateMessage(context.Background(), m); err != nil {
			tb.Fatal(err)
		}
	}
	return ids
}

// BenchmarkRecordEvents measures one group commit of 200 events (opens and clicks over 50 messages), the
// unit the recorder commits under heavy load, and of 20 and 15, typical batches at 64 connections, for
// messages of a few bytes and of 16 KiB (an Outlook-composed email); events/s is the figure to compare
// with the tracking hit rate. Opens in batches of 1, 5, 20 and 50 split a commit's cost into what it
// costs whatever its size and what each event adds.
func BenchmarkRecordEvents(b *testing.B) {
	for _, c := range []struct {
		kind  followed.EventKind
		batch int
		body  int
	}{{followed.Opened, 200, 0}, {followed.LinkClicked, 200, 0}, {followed.Opened, 20, 0}, {followed.Opened, 20, 16 << 10},
		{followed.LinkClicked, 20, 16 << 10}, {followed.LinkClicked, 15, 16 << 10}, {followed.Opened, 1, 16 << 10}, {followed.Opened, 5, 16 << 10}, {followed.Opened, 50, 16 << 10}} {
		kind, batch := c.kind, c.batch
		b.Run(fmt.Sprintf("%s/%d/body=%d", kind, batch, c.body), func(b *testing.B) {
			db := sqlite.OpenTemp(b)
			msgs := benchMessagesOf(b, db, 50, "<p>"+strings.Repeat("x", c.body)+"</p>")
			ctx := context.Background()
			evs := make([]followed.Event, batch)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				at := time.Now()
				for j := range evs {
					evs[j] = followed.Event{ID: followed.NewID(at), MessageID: msgs[(i*batch+j)%len(msgs)], Kind: kind, At: at,
						Recipient: followed.Shared, Link: -1, IP: "192.0.2.1", UserAgent: "Mozilla/5.0", Method: "GET",
						Device: followed.Device{Type: followed.DeviceDesktop, OS: "Windows", Client: "Outlook"}}
					if kind == followed.LinkClicked {
						evs[j].Link, evs[j].URL = j%2, fmt.Sprintf("https://example.com/%d", j%2)
					}
				}
				if _, err := db.RecordEvents(ctx, evs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkIndexEvents measures the background indexer on what half a second of tracking at 64
// connections leaves it: 7,000 opens over 100 messages of 16 KiB, stored in batches of 20. events/s is
// to compare with the tracking hit rate, since the indexer shares the machine with the hits.
func BenchmarkIndexEvents(b *testing.B) {
	const events, batch = 7000, 20
	db := openIdle(b)
	msgs := benchMessagesOf(b, db, 100, "<p>"+strings.Repeat("x", 16<<10)+"</p>")
	ctx := context.Background()
	evs := make([]followed.Event, batch)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		for j := 0; j < events; j += batch {
			at := time.Now()
			for k := range evs {
				evs[k] = followed.Event{ID: followed.NewID(at), MessageID: msgs[(i*events+j+k)%len(msgs)], Kind: followed.Opened,
					At: at, Recipient: followed.Shared, Link: -1, IP: "192.0.2.1", UserAgent: "Mozilla/5.0", Method: "GET",
					Device: followed.Device{Type: followed.DeviceDesktop, OS: "Windows", Client: "Outlook"}}
			}
			if _, err := db.RecordEvents(ctx, evs); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		if err := sqlite.IndexEvents(ctx, db); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if n, err := sqlite.UnindexedEvents(ctx, db); err != nil || n != 0 {
		b.Fatalf("%d events left unindexed, %v", n, err)
	}
	b.ReportMetric(float64(b.N*events)/b.Elapsed().Seconds(), "events/s")
}
