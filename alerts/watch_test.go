package alerts_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/engage-email/engage/alerts"
	"github.com/engage-email/engage/auth"
	"github.com/engage-email/engage/store/sqlite"
)

// watchedDB is the embedded store made an alerts.Waker by the test, standing in for a backend whose
// change stream reports inserts: the test decides when a wake happens, or that the watch fails.
type watchedDB struct {
	*sqlite.DB
	watch func(ctx context.Context, wake func()) error
}

func (w watchedDB) WatchAlerts(ctx context.Context, wake func()) error { return w.watch(ctx, wake) }

// syncBuffer collects log output written from the service's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestWatchWakesTheTail: an alert stored by another instance (straight into the store, so this
// service is not told) reaches a subscriber when the store's watch wakes the tail, although both tail
// intervals are an hour; a watch that fails or ends on its own is logged once and the tail falls
// back to polling at TailInterval.
func TestWatchWakesTheTail(t *testing.T) {
	const hour = time.Hour
	tests := []struct {
		name         string
		tailInterval time.Duration
		// watch is the store's watch; trigger, when the watch reads it, is where the test asks for a wake.
		watch    func(trigger <-chan struct{}) func(ctx context.Context, wake func()) error
		wakes    bool   // the test wakes the watch after storing the alert
		wantLogs string // a warning the service must have logged, once
	}{
		{"a wake delivers at once", hour, func(trigger <-chan struct{}) func(context.Context, func()) error {
			return func(ctx context.Context, wake func()) error {
				for {
					select {
					case <-ctx.Done():
						return nil
					case <-trigger:
						wake()
					}
				}
			}
		}, true, ""},
		{"a failing watch falls back to the tail", 10 * time.Millisecond, func(<-chan struct{}) func(context.Context, func()) error {
			return func(context.Context, func()) error {
				return errors.New("the $changeStream stage is only supported on replica sets")
			}
		}, false, "only supported on replica sets"},
		{"a watch that ends on its own falls back to the tail", 10 * time.Millisecond, func(<-chan struct{}) func(context.Context, func()) error {
			return func(context.Context, func()) error { return nil }
		}, false, "the watch ended on its own"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := sqlite.OpenTemp(t)
			trigger := make(chan struct{})
			logs := &syncBuffer{}
			s := alerts.New(watchedDB{DB: db, watch: tt.watch(trigger)}, db, alerts.Options{
				TailInterval: tt.tailInterval, WatchedInterval: hour, ReminderInterval: hour, EngagementInterval: hour,
				RecoveryInterval: hour, Log: slog.New(slog.NewTextHandler(logs, nil))})
			ctx, cancel := context.WithCancel(context.Background())
			if err := s.Start(ctx); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cancel(); s.Wait() })
			ch, err := alerts.Subscribe(ctx, s, auth.Identity{Email: "rep@contoso.com"}, alerts.SubscribeOptions{},
				func(a alerts.Alert) string { return a.ID })
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.AppendAlerts(ctx, burst("rep@contoso.com", 0, 1)); err != nil { // another instance's alert
				t.Fatal(err)
			}
			if tt.wakes {
				trigger <- struct{}{} // received only once the watch runs
			}
			if got := <-ch; got != "a0000" {
				t.Fatalf("got %s, want a0000", got)
			}
			got := logs.String()
			if tt.wantLogs == "" {
				if strings.Contains(got, "level=WARN") || strings.Contains(got, "level=ERROR") {
					t.Fatalf("unexpected warning while the watch ran:\n%s", got)
				}
				return
			}
			if n := strings.Count(got, "alert watch unavailable"); n != 1 || !strings.Contains(got, tt.wantLogs) {
				t.Fatalf("fallback logged %d times, want once naming %q:\n%s", n, tt.wantLogs, got)
			}
		})
	}
}
