package sqlite_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/recommend"
	"github.com/engage-email/engage/store/sqlite"
)

// BenchmarkSendTimeRecommendation asks for 3 slots for 10 recipients in 4 zones from a SQLite store
// holding 100,000 tracking events (human and machine opens, clicks, replies) on 40,000 followed
// messages to 1,000 recipients in 50 domains, a third of them with a zone on record, and reports the
// p99 latency. "cached" is how cmd/engage wires it (organisation and domain histograms re-read every
// five minutes); "uncached" aggregates them on every call.
func BenchmarkSendTimeRecommendation(b *testing.B) {
	ctx := context.Background()
	db := sqlite.OpenTemp(b)
	zones := make([]*time.Location, 0, 4)
	for _, name := range []string{"Europe/Berlin", "America/New_York", "Asia/Tokyo", "Europe/London"} {
		loc, err := time.LoadLocation(name)
		if err != nil {
			b.Fatal(err)
		}
		zones = append(zones, loc)
	}
	const messages, events, people = 40_000, 100_000, 1000
	rnd := rand.New(rand.NewPCG(3, 5))
	start := time.Date(2025, 1, 6, 0, 0, 0, 0, time.UTC)
	addr := func(p int) string { return fmt.Sprintf("p%d@d%d.example", p, p%50) }
	for p := 0; p < people; p += 3 {
		if err := db.SaveProfile(ctx, recommend.Profile{Recipient: addr(p), Location: zones[p%len(zones)],
			Source: recommend.SourceProfile}, start); err != nil {
			b.Fatal(err)
		}
	}
	sent := make([]time.Time, messages)
	for i := range messages {
		sent[i] = start.Add(time.Duration(rnd.IntN(12*7*24*60)) * time.Minute)
		m := followed.Message{ID: fmt.Sprintf("m%05d", i), Owner: "rep@org.example", Subject: "S", HTML: "x",
			Individual: true, Following: true, CreatedAt: sent[i], Warnings: []string{},
			Recipients: []followed.Recipient{{Email: addr(rnd.IntN(people)), Kind: followed.KindTo}},
			Renders:    []followed.Render{{Index: 0, Recipient: 0, Targets: []int{0}, HTML: "x", Tracked: true}}}
		if err := db.CreateMessage(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
	kinds := []followed.EventKind{followed.Opened, followed.Opened, followed.Opened, followed.LinkClicked, followed.Replied}
	batch := make([]followed.Event, 0, 500)
	for i := range events {
		m := rnd.IntN(messages)
		ev := followed.Event{ID: fmt.Sprintf("e%06d", i), MessageID: fmt.Sprintf("m%05d", m), Kind: kinds[rnd.IntN(len(kinds))],
			At: sent[m].Add(time.Duration(rnd.IntN(48*60)) * time.Minute), Link: -1, Machine: rnd.IntN(4) == 0}
		if ev.Kind == followed.LinkClicked {
			ev.Link = 0
		}
		if batch = append(batch, ev); len(batch) == cap(batch) || i == events-1 {
			if _, err := db.RecordEvents(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	recipients := make([]string, 10)
	for i := range recipients {
		recipients[i] = addr(i * 7)
	}
	after := start.AddDate(0, 0, 7*12)
	for _, tc := range []struct {
		name  string
		store recommend.Store
	}{
		{"cached", recommend.Cached(db, 5*time.Minute, time.Now)},
		{"uncached", db},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s, err := recommend.NewSendTimes(tc.store, rand.New(rand.NewPCG(7, 11)), recommend.DefaultExplore)
			if err != nil {
				b.Fatal(err)
			}
			var lat []time.Duration
			b.ReportAllocs()
			for b.Loop() {
				t0 := time.Now()
				slots, err := s.Recommend(ctx, "rep@org.example", recipients, after, 3, zones[0])
				if err != nil || len(slots) != 3 {
					b.Fatalf("Recommend: %d slots, %v", len(slots), err)
				}
				lat = append(lat, time.Since(t0))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
