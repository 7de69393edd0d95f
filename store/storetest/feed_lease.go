package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/engage-email/engage/feed"
	"github.com/engage-email/engage/followed"
)

// claim leases an endpoint to instance at now for a minute, failing the test when it cannot.
func claim(t *testing.T, s feed.Store, id, instance string, now time.Time) feed.Endpoint {
	t.Helper()
	ep, err := s.ClaimEndpoint(context.Background(), id, instance, now, now.Add(time.Minute))
	if err != nil {
		t.Fatalf("%s claims %s at %s: %v", instance, id, now, err)
	}
	return ep
}

// webhook is an endpoint due at t0 with a clean state.
func webhook(id string) feed.Endpoint {
	return feed.Endpoint{ID: id, URL: "https://crm.example.com/" + id, Secret: "s3cret-s3cret-s3cret-s3cret-s3cret",
		Categories: []feed.Category{feed.Open}, Interval: time.Minute, CreatedBy: "admin@contoso.com", CreatedAt: t0,
		UpdatedBy: "admin@contoso.com", UpdatedAt: t0, State: feed.State{Cursor: 3, NextAt: t0}}
}

// runFeedLeases checks the lease that keeps instances sharing a store from stepping one endpoint at once.
func runFeedLeases(t *testing.T, open func(t *testing.T) Stores) {
	ctx := context.Background()

	t.Run("endpoint claims: one of many concurrent claimers wins", func(t *testing.T) {
		st := feedStores(t, open)
		if err := st.Feed.CreateEndpoint(ctx, webhook("ep")); err != nil {
			t.Fatal(err)
		}
		const claimers = 8
		for round := range 4 {
			t.Run(fmt.Sprint("round ", round), func(t *testing.T) {
				now := t0.Add(time.Duration(round) * time.Minute)
				var wg sync.WaitGroup
				won := make(chan feed.Endpoint, claimers)
				start := make(chan struct{})
				for i := range claimers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						ep, err := st.Feed.ClaimEndpoint(ctx, "ep", fmt.Sprint("inst-", i), now, now.Add(time.Minute))
						switch {
						case err == nil:
							won <- ep
						case !errors.Is(err, feed.ErrTaken):
							t.Errorf("inst-%d: %v, want a win or ErrTaken", i, err)
						}
					}()
				}
				close(start)
				wg.Wait()
				close(won)
				var winners []feed.Endpoint
				for ep := range won {
					winners = append(winners, ep)
				}
				if len(winners) != 1 {
					t.Fatalf("%d claimers won, want 1", len(winners))
				}
				w := winners[0]
				if w.LeaseOwner == "" || !w.LeaseUntil.Equal(now.Add(time.Minute)) || w.State.Cursor != 3+int64(round) {
					t.Errorf("the winner got %+v", w)
				}
				if got, err := st.Feed.Endpoint(ctx, "ep"); err != nil || got.LeaseOwner != w.LeaseOwner || !got.LeaseUntil.Equal(w.LeaseUntil) {
					t.Errorf("stored lease %q until %s (%v), the winner is %q", got.LeaseOwner, got.LeaseUntil, err, w.LeaseOwner)
				}
				// The winner moves the cursor on and makes the endpoint due again at the next round.
				next := w.State
				next.Cursor, next.NextAt = next.Cursor+1, now.Add(time.Minute)
				if err := st.Feed.SaveState(ctx, "ep", w.LeaseOwner, next, nil); err != nil {
					t.Fatal(err)
				}
			})
		}
	})

	t.Run("what may be claimed", func(t *testing.T) {
		st := feedStores(t, open)
		for _, tc := range []struct {
			name  string
			setup func(ep *feed.Endpoint) // before the endpoint is stored
			now   time.Time
			want  error
		}{
			{"due", nil, t0, nil},
			{"due long ago", nil, t0.Add(time.Hour), nil},
			{"not due", nil, t0.Add(-time.Millisecond), feed.ErrTaken},
			{"disabled", func(ep *feed.Endpoint) {
				ep.State.DisabledAt, ep.State.DisabledReason = t0.Add(-time.Hour), "failing"
			}, t0.Add(time.Hour), feed.ErrTaken},
			{"leased to another", func(ep *feed.Endpoint) {
				ep.LeaseOwner, ep.LeaseUntil = "inst-b", t0.Add(30*time.Second)
			}, t0.Add(29 * time.Second), feed.ErrTaken},
			{"another's lease ran out", func(ep *feed.Endpoint) {
				ep.LeaseOwner, ep.LeaseUntil = "inst-b", t0.Add(30*time.Second)
			}, t0.Add(30 * time.Second), nil},
			{"already this instance's", func(ep *feed.Endpoint) {
				ep.LeaseOwner, ep.LeaseUntil = "inst-a", t0.Add(30*time.Second)
			}, t0.Add(time.Second), nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ep := webhook(strings.ReplaceAll(tc.name, " ", "-"))
				if tc.setup != nil {
					tc.setup(&ep)
				}
				if err := st.Feed.CreateEndpoint(ctx, ep); err != nil {
					t.Fatal(err)
				}
				got, err := st.Feed.ClaimEndpoint(ctx, ep.ID, "inst-a", tc.now, tc.now.Add(time.Minute))
				if !errors.Is(err, tc.want) {
					t.Fatalf("claim: %v, want %v", err, tc.want)
				}
				stored, serr := st.Feed.Endpoint(ctx, ep.ID)
				if serr != nil {
					t.Fatal(serr)
				}
				if tc.want != nil {
					if !reflect.DeepEqual(stored, ep) {
						t.Errorf("a refused claim changed the endpoint: %+v, want %+v", stored, ep)
					}
					return
				}
				want := ep
				want.LeaseOwner, want.LeaseUntil = "inst-a", tc.now.Add(time.Minute)
				if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(stored, want) {
					t.Errorf("claimed %+v, stored %+v, want %+v", got, stored, want)
				}
			})
		}
		if _, err := st.Feed.ClaimEndpoint(ctx, "absent", "inst-a", t0, t0.Add(time.Minute)); !errors.Is(err, followed.ErrNotFound) {
			t.Errorf("claiming an absent endpoint: %v", err)
		}
	})

	t.Run("an expired lease is taken over and the old holder writes nothing", func(t *testing.T) {
		st := feedStores(t, open)
		if err := st.Feed.CreateEndpoint(ctx, webhook("ep")); err != nil {
			t.Fatal(err)
		}
		a := claim(t, st.Feed, "ep", "inst-a", t0)
		fixed := a.State
		fixed.Batch = &feed.Batch{Key: feed.BatchKey("ep", 4, 6), First: 4, Last: 6, Through: 7, Categories: []feed.Category{feed.Open}, FormedAt: t0}
		if err := st.Feed.FixBatch(ctx, "ep", "inst-a", fixed); err != nil {
			t.Fatal(err)
		}
		if got, _ := st.Feed.Endpoint(ctx, "ep"); got.LeaseOwner != "inst-a" || !reflect.DeepEqual(got.State, fixed) {
			t.Fatalf("after fixing the batch: lease %q, state %+v", got.LeaseOwner, got.State)
		}
		if _, err := st.Feed.ClaimEndpoint(ctx, "ep", "inst-b", t0.Add(59*time.Second), t0.Add(2*time.Minute)); !errors.Is(err, feed.ErrTaken) {
			t.Fatalf("inst-b claimed a running lease: %v", err)
		}
		b := claim(t, st.Feed, "ep", "inst-b", t0.Add(time.Minute))
		if !reflect.DeepEqual(b.State, fixed) {
			t.Errorf("the new holder sees %+v, want the fixed batch %+v", b.State, fixed)
		}
		// inst-a comes back from a long pause: every write it tries is refused and changes nothing.
		late := fixed
		late.Cursor, late.Batch, late.NextAt = 6, nil, t0.Add(2*time.Minute)
		for name, err := range map[string]error{
			"saveState": st.Feed.SaveState(ctx, "ep", "inst-a", late, &feed.Delivery{ID: "late", EndpointID: "ep", Key: fixed.Batch.Key,
				Attempt: 1, At: t0.Add(time.Minute), Outcome: feed.Delivered, StatusCode: 200, Records: 3, First: 4, Last: 6}),
			"fixBatch": st.Feed.FixBatch(ctx, "ep", "inst-a", late),
		} {
			if !errors.Is(err, feed.ErrLeaseLost) {
				t.Errorf("%s by the old holder: %v, want ErrLeaseLost", name, err)
			}
		}
		got, err := st.Feed.Endpoint(ctx, "ep")
		if err != nil || got.LeaseOwner != "inst-b" || !reflect.DeepEqual(got.State, fixed) {
			t.Errorf("after the old holder's writes: lease %q, state %+v (%v)", got.LeaseOwner, got.State, err)
		}
		if ds, err := st.Feed.Deliveries(ctx, "ep", 10); err != nil || len(ds) != 0 {
			t.Errorf("the old holder logged %+v (%v)", ds, err)
		}
		// The new holder saves and releases; after that nobody holds it, inst-b included.
		d := feed.Delivery{ID: "d1", EndpointID: "ep", Key: fixed.Batch.Key, Attempt: 1, At: t0.Add(time.Minute), Outcome: feed.Delivered,
			StatusCode: 200, Records: 3, First: 4, Last: 6}
		if err := st.Feed.SaveState(ctx, "ep", "inst-b", late, &d); err != nil {
			t.Fatal(err)
		}
		if got, _ := st.Feed.Endpoint(ctx, "ep"); got.LeaseOwner != "" || !got.LeaseUntil.IsZero() || !reflect.DeepEqual(got.State, late) {
			t.Errorf("after the holder saved: lease %q until %s, state %+v", got.LeaseOwner, got.LeaseUntil, got.State)
		}
		if err := st.Feed.SaveState(ctx, "ep", "inst-b", late, nil); !errors.Is(err, feed.ErrLeaseLost) {
			t.Errorf("a second save after the release: %v", err)
		}
		if ds, err := st.Feed.Deliveries(ctx, "ep", 10); err != nil || !reflect.DeepEqual(ds, []feed.Delivery{d}) {
			t.Errorf("log %+v (%v)", ds, err)
		}
	})

	t.Run("an admin updates or deletes an endpoint during a step", func(t *testing.T) {
		st := feedStores(t, open)
		for _, id := range []string{"upd", "del"} {
			if err := st.Feed.CreateEndpoint(ctx, webhook(id)); err != nil {
				t.Fatal(err)
			}
			claim(t, st.Feed, id, "inst-a", t0)
		}
		changed := webhook("upd")
		changed.URL, changed.UpdatedAt = "https://crm.example.com/v2", t0.Add(time.Second)
		if err := st.Feed.UpdateEndpoint(ctx, changed, false); err != nil {
			t.Fatal(err)
		}
		next := changed.State
		next.Cursor, next.NextAt = 9, t0.Add(time.Minute)
		if err := st.Feed.SaveState(ctx, "upd", "inst-a", next, nil); err != nil {
			t.Fatalf("saving after an update: %v", err)
		}
		if got, _ := st.Feed.Endpoint(ctx, "upd"); got.URL != changed.URL || !reflect.DeepEqual(got.State, next) || got.LeaseOwner != "" {
			t.Errorf("after update and save: %+v", got)
		}
		if err := st.Feed.DeleteEndpoint(ctx, "del"); err != nil {
			t.Fatalf("deleting a leased endpoint: %v", err)
		}
		for name, err := range map[string]error{
			"fixBatch":  st.Feed.FixBatch(ctx, "del", "inst-a", next),
			"saveState": st.Feed.SaveState(ctx, "del", "inst-a", next, &feed.Delivery{ID: "gone", EndpointID: "del", At: t0}),
		} {
			if !errors.Is(err, followed.ErrNotFound) {
				t.Errorf("%s after delete: %v, want ErrNotFound", name, err)
			}
		}
		if ds, err := st.Feed.Deliveries(ctx, "del", 10); err != nil || len(ds) != 0 {
			t.Errorf("log of a deleted endpoint: %+v (%v)", ds, err)
		}
	})
}
