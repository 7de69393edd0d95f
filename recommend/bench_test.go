package recommend

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// BenchmarkRecommend10Recipients asks for 3 slots for 10 recipients in 4 zones, from a history of
// 100,000 deliveries (about 40% engaged) over 1,000 recipients in 50 domains, and reports the p99.
func BenchmarkRecommend10Recipients(b *testing.B) {
	zones := []*time.Location{zone(b, "Europe/Berlin"), zone(b, "America/New_York"), zone(b, "Asia/Tokyo"), zone(b, "Europe/London")}
	rnd := rand.New(rand.NewPCG(3, 5))
	st := newHistStore()
	start := time.Date(2025, 1, 6, 0, 0, 0, 0, time.UTC)
	const events, people = 100_000, 1000
	for i := range events {
		p := rnd.IntN(people)
		addr := fmt.Sprintf("p%d@d%d.example", p, p%50)
		loc := zones[p%len(zones)]
		if p%3 == 0 {
			st.profiles[addr] = Profile{Recipient: addr, Location: loc, Source: SourceProfile}
		}
		sent := start.Add(time.Duration(rnd.IntN(12*7*24*60)) * time.Minute)
		var read time.Time
		if i%5 < 2 {
			read = sent.Add(time.Duration(rnd.IntN(48*60)) * time.Minute)
		}
		st.record(addr, loc, sent, read)
	}
	recipients := make([]string, 10)
	for i := range recipients {
		recipients[i] = fmt.Sprintf("p%d@d%d.example", i*7, (i*7)%50)
	}
	s := service(b, st, DefaultExplore)
	after := start.AddDate(0, 0, 7*12)
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		if _, err := s.Recommend(context.Background(), "me@org.example", recipients, after, 3, zones[0]); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
