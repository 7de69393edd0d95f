package alerts_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/engage-email/engage/alerts"
	"github.com/engage-email/engage/auth"
	"github.com/engage-email/engage/store/sqlite"
)

func newService(t *testing.T, buffer int) (*alerts.Service, *sqlite.DB) {
	t.Helper()
	db := sqlite.OpenTemp(t)
	s := alerts.New(db, db, alerts.Options{Buffer: buffer, TailInterval: 10 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); s.Wait() })
	return s, db
}

func burst(owner string, from, n int) []alerts.Alert {
	var as []alerts.Alert
	for i := from; i < from+n; i++ {
		as = append(as, alerts.Alert{ID: fmt.Sprintf("a%04d", i), Key: fmt.Sprintf("k%d", i), Owner: owner,
			Kind: alerts.FirstOpen, At: time.Now(), MessageID: "m", Subject: "s"})
	}
	return as
}

func TestSubscribeReplaysThenStreamsWithoutRepeats(t *testing.T) {
	s, db := newService(t, 64)
	ctx := context.Background()
	stored, err := db.AppendAlerts(ctx, burst("rep@contoso.com", 0, 150)) // more than a replay page
	if err != nil {
		t.Fatal(err)
	}
	db.AppendAlerts(ctx, burst("other@contoso.com", 1000, 5))
	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := alerts.Subscribe(subCtx, s, auth.Identity{Email: "rep@contoso.com"},
		alerts.SubscribeOptions{Since: stored[9].Cursor(), OnOverflow: func() { t.Error("overflow") }},
		func(a alerts.Alert) string { return a.ID })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.AppendAlerts(ctx, burst("rep@contoso.com", 150, 10)); err != nil {
		t.Fatal(err)
	}
	for want := 10; want < 160; want++ {
		if got := <-ch; got != fmt.Sprintf("a%04d", want) {
			t.Fatalf("got %s, want a%04d", got, want)
		}
	}
}

func TestSlowSubscriberOverflowsAlone(t *testing.T) {
	s, db := newService(t, 4)
	ctx := context.Background()
	who := auth.Identity{Email: "rep@contoso.com"}
	overflowed := make(chan struct{})
	slow, err := alerts.Subscribe(ctx, s, who, alerts.SubscribeOptions{OnOverflow: func() { close(overflowed) }},
		func(a alerts.Alert) string { return a.ID })
	if err != nil {
		t.Fatal(err)
	}
	fastCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	fast, _ := alerts.Subscribe(fastCtx, s, who, alerts.SubscribeOptions{OnOverflow: func() { t.Error("the fast one overflowed") }},
		func(a alerts.Alert) string { return a.ID })
	for i := range 8 { // the fast reader takes each alert; the slow one never reads and fills its buffer of 4
		db.AppendAlerts(ctx, burst("rep@contoso.com", i, 1))
		if got := <-fast; got != fmt.Sprintf("a%04d", i) {
			t.Fatalf("fast got %s, want a%04d", got, i)
		}
	}
	<-overflowed
	n := 0
	for range slow { // the channel is closed after OnOverflow
		n++
	}
	if n != 4 {
		t.Fatalf("slow subscriber got %d buffered alerts before the close, want 4", n)
	}
	if s.Subscribers() != 1 {
		t.Fatalf("%d subscribers left, want the fast one only", s.Subscribers())
	}
}

func TestSubscribeRefusesAnonymousAndBadCursors(t *testing.T) {
	s, _ := newService(t, 4)
	tests := []struct {
		name  string
		who   auth.Identity
		since string
	}{
		{"anonymous", auth.Identity{}, ""},
		{"bad cursor", auth.Identity{Email: "rep@contoso.com"}, "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := alerts.Subscribe(context.Background(), s, tt.who, alerts.SubscribeOptions{Since: tt.since},
				func(a alerts.Alert) string { return a.ID }); err == nil {
				t.Fatal("subscribed")
			}
			if s.Subscribers() != 0 {
				t.Fatal("a refused subscription was registered")
			}
		})
	}
}
