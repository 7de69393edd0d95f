package feed_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/engage-email/engage/feed"
	"github.com/engage-email/engage/store/sqlite"
)

// TestSlowEndpointHoldsOnlyItself runs the real loop: one receiver never answers in time, the other
// gets its batches all the same, and events keep being stored meanwhile.
func TestSlowEndpointHoldsOnlyItself(t *testing.T) {
	c := &clock{now: time.Now()}
	f := newFixture(t, sqlite.OpenTemp(t), c, feed.Options{Poll: 10 * time.Millisecond, Timeout: 300 * time.Millisecond})
	stuck := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stuck:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(stuck)
	rcv := newReceiver(t, c)
	slowEP := f.register(t, slow.URL)
	healthy := f.register(t, rcv.srv.URL)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.svc.Run(ctx) }()
	defer func() { cancel(); <-done }()
	c.Add(time.Minute)
	var want []string
	for round := range 3 {
		want = append(want, f.opens(t, fmt.Sprint("m", round), 2)...)
		c.Add(time.Minute)
		deadline := time.Now().Add(10 * time.Second)
		for {
			// The receiver holds the records before the dispatcher has saved the delivery and the next
			// due time; the clock moves on only after that, or the next round would never fall due.
			_, records := rcv.stored()
			if len(records) == len(want) && delivered(t, f, healthy.ID) == len(want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the healthy endpoint did not get its records (%d of %d, %d logged)", round, len(records), len(want), delivered(t, f, healthy.ID))
			}
			time.Sleep(10 * time.Millisecond)
			if time.Until(deadline) < 8*time.Second {
				// A poll that found nothing may have read the clock after this round moved it, and
				// be waiting for the minute after; a slow machine must not fail on that.
				c.Add(time.Minute)
			}
		}
	}
	if f.endpoint(t, slowEP.ID).State.Batch == nil {
		t.Error("the slow endpoint has no batch in retry")
	}
}

// delivered counts the records in the endpoint's logged successful deliveries.
func delivered(t *testing.T, f *fixture, id string) int {
	t.Helper()
	log, err := f.svc.Deliveries(context.Background(), admin, id, 100)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range log {
		if d.Outcome == feed.Delivered {
			n += d.Records
		}
	}
	return n
}
