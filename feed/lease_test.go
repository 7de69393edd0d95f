package feed_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/engage-email/engage/feed"
	"github.com/engage-email/engage/store/sqlite"
)

// TestTwoInstancesDeliverEachBatchOnce runs two dispatchers, as two Engage instances would, on one store
// and one receiver, draining backlogs that both find due at the same moment: every record arrives
// exactly once, every batch is sent once, and no two idempotency keys cover the same positions.
func TestTwoInstancesDeliverEachBatchOnce(t *testing.T) {
	c := &clock{now: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)}
	db := sqlite.OpenTemp(t)
	rcv := newReceiver(t, c)
	rcv.delay = 2 * time.Millisecond
	// An hour's lease: the clock moves a minute a round, and no step here may lose its lease to it.
	opts := feed.Options{Poll: 2 * time.Millisecond, MaxBatch: 4, Lease: time.Hour}
	var instances []*fixture
	for _, name := range []string{"instance-a", "instance-b"} {
		o := opts
		o.Instance = name
		instances = append(instances, newFixture(t, db, c, o))
	}
	f := instances[0]
	ep := f.register(t, rcv.srv.URL)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, in := range instances {
		wg.Add(1)
		go func() { defer wg.Done(); in.svc.Run(ctx) }()
	}
	defer func() { cancel(); wg.Wait() }()

	var want []string
	for round := range 5 {
		want = append(want, f.opens(t, fmt.Sprint("m", round), 9+round*4)...)
		c.Add(time.Minute) // the endpoint falls due for both instances at once
		deadline := time.Now().Add(20 * time.Second)
		for delivered(t, f, ep.ID) < len(want) {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: %d of %d records delivered", round, delivered(t, f, ep.ID), len(want))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	cancel()
	wg.Wait()

	keys, records := rcv.stored()
	if len(records) != len(want) {
		t.Errorf("the receiver stored %d distinct records, want %d", len(records), len(want))
	}
	for _, id := range want {
		if records[id] != 1 {
			t.Errorf("record %s stored under %d keys", id, records[id])
		}
	}
	type span struct{ first, last int64 }
	var spans []span
	for _, k := range keys {
		if n := rcv.attemptsOf(k); n != 1 {
			t.Errorf("batch %s sent %d times", k, n)
		}
		first, last, err := keySpan(ep.ID, k)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range spans {
			if first <= s.last && s.first <= last {
				t.Errorf("key %s overlaps positions %d-%d of another key", k, s.first, s.last)
			}
		}
		spans = append(spans, span{first, last})
	}
	log, err := f.svc.Deliveries(context.Background(), admin, ep.ID, 1000)
	if err != nil || len(log) != len(keys) {
		t.Errorf("%d deliveries logged for %d batches (%v)", len(log), len(keys), err)
	}
	if got := f.endpoint(t, ep.ID); got.LeaseOwner != "" || got.State.Batch != nil {
		t.Errorf("after the last round: lease %q, batch %+v", got.LeaseOwner, got.State.Batch)
	}
}

// keySpan reads the positions a batch key names (BatchKey's "endpoint:first-last").
func keySpan(endpointID, key string) (first, last int64, err error) {
	a, b, ok := strings.Cut(strings.TrimPrefix(key, endpointID+":"), "-")
	if !ok {
		return 0, 0, fmt.Errorf("key %q is not %s:first-last", key, endpointID)
	}
	if first, err = strconv.ParseInt(a, 10, 64); err == nil {
		last, err = strconv.ParseInt(b, 10, 64)
	}
	return first, last, err
}

// TestStepWaitsForAnotherInstancesLease holds the endpoint as another instance would: this one leaves it
// alone while the lease runs, takes it over once it has run out, and the other's late save is refused.
func TestStepWaitsForAnotherInstancesLease(t *testing.T) {
	ctx := context.Background()
	c := &clock{now: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)}
	f := newFixture(t, sqlite.OpenTemp(t), c, feed.Options{Instance: "instance-a"})
	rcv := newReceiver(t, c)
	ep := f.register(t, rcv.srv.URL)
	ids := f.opens(t, "m", 3)
	c.Add(time.Minute)
	other, err := f.db.ClaimEndpoint(ctx, ep.ID, "instance-b", c.Now(), c.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		advance  time.Duration
		requests int
		owner    string
	}{
		{"while the other's lease runs", 59 * time.Second, 0, "instance-b"},
		{"once it has run out", time.Second, 1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.Add(tc.advance)
			f.svc.Tick(ctx)
			if n := rcv.requests(); n != tc.requests {
				t.Errorf("%d requests, want %d", n, tc.requests)
			}
			if got := f.endpoint(t, ep.ID); got.LeaseOwner != tc.owner {
				t.Errorf("lease held by %q, want %q", got.LeaseOwner, tc.owner)
			}
		})
	}
	_, records := rcv.stored()
	for _, id := range ids {
		if records[id] != 1 {
			t.Errorf("record %s stored %d times", id, records[id])
		}
	}
	done := f.endpoint(t, ep.ID)
	stale := other.State
	stale.NextAt = c.Now().Add(time.Hour)
	if err := f.db.SaveState(ctx, ep.ID, "instance-b", stale, nil); !errors.Is(err, feed.ErrLeaseLost) {
		t.Errorf("the other instance's late save: %v, want ErrLeaseLost", err)
	}
	if got := f.endpoint(t, ep.ID); got.State.Cursor != done.State.Cursor || !got.State.NextAt.Equal(done.State.NextAt) {
		t.Errorf("the late save changed the state to %+v", got.State)
	}
}

// TestLeaseOutlastsTheAttempt looks at the lease while a delivery is in flight: it runs for Lease, by
// default twice the attempt's timeout plus LeaseMargin, and never for less than the timeout plus it.
func TestLeaseOutlastsTheAttempt(t *testing.T) {
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		lease   time.Duration
		want    time.Duration
	}{
		{"default", 0, 0, 20*time.Second + feed.LeaseMargin},
		{"default for a long timeout", time.Minute, 0, 2*time.Minute + feed.LeaseMargin},
		{"given", 5 * time.Second, 3 * time.Minute, 3 * time.Minute},
		{"too short for the timeout", 10 * time.Second, 5 * time.Second, 10*time.Second + feed.LeaseMargin},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			c := &clock{now: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)}
			f := newFixture(t, sqlite.OpenTemp(t), c, feed.Options{Instance: "instance-a", Timeout: tc.timeout, Lease: tc.lease})
			rcv := newReceiver(t, c)
			ep := f.register(t, rcv.srv.URL)
			f.opens(t, "m", 1)
			c.Add(time.Minute)
			release := make(chan struct{})
			rcv.mu.Lock()
			rcv.hold = release
			rcv.mu.Unlock()
			done := make(chan struct{})
			go func() { defer close(done); f.svc.Tick(ctx) }()
			for rcv.requests() == 0 {
				time.Sleep(time.Millisecond)
			}
			during := f.endpoint(t, ep.ID)
			close(release)
			<-done
			if during.LeaseOwner != "instance-a" || !during.LeaseUntil.Equal(c.Now().Add(tc.want)) {
				t.Errorf("during the attempt: lease %q until %s, want instance-a until %s", during.LeaseOwner, during.LeaseUntil,
					c.Now().Add(tc.want))
			}
			after := f.endpoint(t, ep.ID)
			if after.LeaseOwner != "" || !after.LeaseUntil.IsZero() {
				t.Errorf("after the attempt: lease %q until %s", after.LeaseOwner, after.LeaseUntil)
			}
			if log, err := f.svc.Deliveries(ctx, admin, ep.ID, 10); err != nil || len(log) != 1 || log[0].Outcome != feed.Delivered ||
				log[0].StatusCode != http.StatusOK {
				t.Errorf("log %+v (%v)", log, err)
			}
		})
	}
}
