package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/engage-email/engage/feed"
	"github.com/engage-email/engage/followed"
)

func feedStores(t *testing.T, open func(t *testing.T) Stores) Stores {
	t.Helper()
	st := open(t)
	if st.Feed == nil {
		t.Skip("backend has no feed store")
	}
	return st
}

func record(t *testing.T, s followed.Store, evs ...followed.Event) {
	t.Helper()
	if _, err := s.RecordEvents(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
}

func eventIDs(rs []feed.Record) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.EventID)
	}
	return out
}

func runFeed(t *testing.T, open func(t *testing.T) Stores) {
	ctx := context.Background()

	t.Run("records in log order with category, message and recipient", func(t *testing.T) {
		st := feedStores(t, open)
		mustCreate(t, st.Followed, message("ind", "rep@contoso.com", "Offer", t0, true, "ann@fabrikam.com", "bob@fabrikam.com"),
			message("sh", "rep@contoso.com", "News", t0, false, "cy@fabrikam.com"))
		machine := event("e2", "ind", followed.Opened, t0.Add(2*time.Second), 1, -1)
		machine.Machine, machine.Reason = true, "APPLE_PRIVACY_PROXY"
		click := event("e3", "ind", followed.LinkClicked, t0.Add(3*time.Second), 0, 1)
		click.URL = "https://example.com/b"
		record(t, st.Followed, event("e1", "ind", followed.Opened, t0.Add(time.Second), 0, -1), machine, click)
		record(t, st.Followed, event("e4", "sh", followed.Opened, t0.Add(4*time.Second), followed.Shared, -1),
			event("e5", "ind", followed.Replied, t0.Add(5*time.Second), 1, -1),
			event("e6", "ind", followed.Bounced, t0.Add(6*time.Second), 0, -1),
			event("e7", "ind", followed.Unsubscribed, t0.Add(7*time.Second), 0, -1),
			event("e8", "ind", followed.AutoReplied, t0.Add(8*time.Second), 1, -1),
			event("e9", "ind", followed.AttachmentOpened, t0.Add(9*time.Second), 1, 0))
		all := feed.Kinds(nil)
		for _, tc := range []struct {
			name    string
			q       feed.Query
			want    []string
			through bool // Through is the newest position
		}{
			{"people only", feed.Query{Limit: 100, Kinds: all}, []string{"e1", "e3", "e4", "e5", "e6", "e7", "e8", "e9"}, true},
			{"machines too", feed.Query{Limit: 100, Kinds: all, IncludeMachine: true},
				[]string{"e1", "e2", "e3", "e4", "e5", "e6", "e7", "e8", "e9"}, true},
			{"clicks", feed.Query{Limit: 100, Kinds: feed.Kinds([]feed.Category{feed.Click})}, []string{"e3", "e9"}, true},
			{"bounces and opt-outs", feed.Query{Limit: 100, Kinds: feed.Kinds([]feed.Category{feed.Bounce, feed.Unsubscription})},
				[]string{"e6", "e7"}, true},
			{"a full page", feed.Query{Limit: 2, Kinds: all}, []string{"e1", "e3"}, false},
			{"no kinds", feed.Query{Limit: 10}, []string{}, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				p, err := st.Feed.Responses(ctx, tc.q)
				if err != nil {
					t.Fatal(err)
				}
				if got := eventIDs(p.Records); !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("records %v, want %v", got, tc.want)
				}
				if tc.through != (p.Through == p.Newest) {
					t.Errorf("through %d, newest %d", p.Through, p.Newest)
				}
				if !tc.through && p.Through != p.Records[len(p.Records)-1].Seq {
					t.Errorf("a full page reads through %d, not its last record %d", p.Through, p.Records[len(p.Records)-1].Seq)
				}
			})
		}
		p, err := st.Feed.Responses(ctx, feed.Query{Limit: 100, Kinds: all})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]feed.Record{}
		for i, r := range p.Records {
			got[r.EventID] = r
			if i > 0 && r.Seq <= p.Records[i-1].Seq {
				t.Errorf("position %d after %d", r.Seq, p.Records[i-1].Seq)
			}
		}
		want := map[string]struct {
			c         feed.Category
			recipient string
		}{"e1": {feed.Open, "ann@fabrikam.com"}, "e3": {feed.Click, "ann@fabrikam.com"}, "e4": {feed.Open, ""},
			"e5": {feed.Reply, "bob@fabrikam.com"}, "e6": {feed.Bounce, "ann@fabrikam.com"},
			"e7": {feed.Unsubscription, "ann@fabrikam.com"}, "e8": {feed.Autoresponder, "bob@fabrikam.com"},
			"e9": {feed.Click, "bob@fabrikam.com"}}
		for id, w := range want {
			if r := got[id]; r.Category != w.c || r.Recipient != w.recipient {
				t.Errorf("%s: %s to %q, want %s to %q", id, r.Category, r.Recipient, w.c, w.recipient)
			}
		}
		if r := got["e3"]; r.Subject != "Offer" || r.Owner != "rep@contoso.com" || r.URL != "https://example.com/b" ||
			!r.At.Equal(t0.Add(3*time.Second)) || r.Device.Client != "Outlook" || r.Kind != followed.LinkClicked {
			t.Errorf("e3 = %+v", r)
		}
		newest, err := st.Feed.NewestSeq(ctx)
		if err != nil || newest != p.Newest {
			t.Errorf("newest %d (%v), the page said %d", newest, err, p.Newest)
		}
		// A window: after the first record, through the third.
		win, err := st.Feed.Responses(ctx, feed.Query{After: p.Records[0].Seq, Through: p.Records[2].Seq, Limit: 100, Kinds: all})
		if err != nil {
			t.Fatal(err)
		}
		if got := eventIDs(win.Records); !reflect.DeepEqual(got, []string{"e3", "e4"}) || win.Through != p.Records[2].Seq {
			t.Errorf("window: %v through %d", got, win.Through)
		}
	})

	t.Run("a cursor sees every record once while events keep arriving", func(t *testing.T) {
		st := feedStores(t, open)
		mustCreate(t, st.Followed, message("m", "rep@contoso.com", "Offer", t0, true, "ann@fabrikam.com"))
		const writers, perWriter = 4, 150
		var wg sync.WaitGroup
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range perWriter {
					ev := event(fmt.Sprintf("w%d-%d", w, i), "m", followed.Opened, t0.Add(time.Duration(i)*time.Millisecond), 0, -1)
					if _, err := st.Followed.RecordEvents(ctx, []followed.Event{ev}); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		seen := map[string]int{}
		var after, last int64
		finished := false
		for {
			select {
			case <-done:
				finished = true
			default:
			}
			p, err := st.Feed.Responses(ctx, feed.Query{After: after, Limit: 7, Kinds: feed.Kinds(nil)})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range p.Records {
				if r.Seq <= last {
					t.Fatalf("position %d after %d", r.Seq, last)
				}
				last = r.Seq
				seen[r.EventID]++
			}
			after = p.Through
			if finished && p.Through == p.Newest {
				break // everything written before this read was stored: the log is read to its end
			}
		}
		if len(seen) != writers*perWriter {
			t.Errorf("saw %d distinct records, want %d", len(seen), writers*perWriter)
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("%s seen %d times", id, n)
			}
		}
	})

	t.Run("endpoints keep configuration and state apart", func(t *testing.T) {
		st := feedStores(t, open)
		ep := feed.Endpoint{ID: "ep1", URL: "https://crm.example.com/hook", Secret: "s3cret-s3cret-s3cret-s3cret-s3cret",
			Categories: []feed.Category{feed.Open, feed.Bounce}, Interval: time.Minute, CreatedBy: "admin@contoso.com",
			CreatedAt: t0, UpdatedBy: "admin@contoso.com", UpdatedAt: t0, State: feed.State{Cursor: 5, NextAt: t0.Add(time.Minute)}}
		if err := st.Feed.CreateEndpoint(ctx, ep); err != nil {
			t.Fatal(err)
		}
		if err := st.Feed.CreateEndpoint(ctx, ep); err == nil {
			t.Error("an endpoint id was stored twice")
		}
		got, err := st.Feed.Endpoint(ctx, "ep1")
		if err != nil || !reflect.DeepEqual(got, ep) {
			t.Fatalf("endpoint = %+v (%v), want %+v", got, err, ep)
		}
		if _, err := st.Feed.Endpoint(ctx, "nope"); !errors.Is(err, followed.ErrNotFound) {
			t.Errorf("absent endpoint: %v", err)
		}
		// Delivery state moves with its log row.
		b := &feed.Batch{Key: feed.BatchKey("ep1", 6, 9), First: 6, Last: 9, Through: 12, Categories: []feed.Category{feed.Open},
			Attempts: 2, FormedAt: t0.Add(time.Minute)}
		state := feed.State{Cursor: 5, Batch: b, NextAt: t0.Add(2 * time.Minute), FailingSince: t0.Add(time.Minute),
			DisabledAt: t0.Add(3 * time.Minute), DisabledReason: "failing"}
		d := feed.Delivery{ID: "d1", EndpointID: "ep1", Key: b.Key, Attempt: 2, At: t0.Add(time.Minute), Outcome: feed.Failed,
			StatusCode: 503, Error: "the receiver answered 503", Duration: 40 * time.Millisecond, Records: 3, First: 6, Last: 9}
		retry := state
		retry.DisabledAt, retry.DisabledReason = time.Time{}, ""
		claim(t, st.Feed, "ep1", "inst-a", t0.Add(time.Minute))
		if err := st.Feed.SaveState(ctx, "ep1", "inst-a", retry, &d); err != nil {
			t.Fatal(err)
		}
		d2 := d
		d2.ID, d2.At, d2.Outcome, d2.StatusCode, d2.Error = "d2", t0.Add(2*time.Minute), feed.Delivered, 200, ""
		claim(t, st.Feed, "ep1", "inst-a", t0.Add(2*time.Minute))
		if err := st.Feed.SaveState(ctx, "ep1", "inst-a", state, &d2); err != nil {
			t.Fatal(err)
		}
		got, err = st.Feed.Endpoint(ctx, "ep1")
		if err != nil || !reflect.DeepEqual(got.State, state) || got.LeaseOwner != "" || !got.LeaseUntil.IsZero() {
			t.Fatalf("state = %+v, lease %q until %s (%v), want %+v and no lease", got.State, got.LeaseOwner, got.LeaseUntil, err, state)
		}
		ds, err := st.Feed.Deliveries(ctx, "ep1", 10)
		if err != nil || !reflect.DeepEqual(ds, []feed.Delivery{d2, d}) {
			t.Fatalf("deliveries = %+v (%v)", ds, err)
		}
		// A configuration change leaves the state alone; a reset re-enables.
		ep.URL, ep.Categories, ep.UpdatedBy, ep.UpdatedAt = "https://crm.example.com/v2", []feed.Category{feed.Reply}, "other@contoso.com", t0.Add(time.Hour)
		if err := st.Feed.UpdateEndpoint(ctx, ep, false); err != nil {
			t.Fatal(err)
		}
		got, _ = st.Feed.Endpoint(ctx, "ep1")
		if got.URL != ep.URL || !reflect.DeepEqual(got.Categories, ep.Categories) || !reflect.DeepEqual(got.State, state) {
			t.Errorf("after update: %+v", got)
		}
		// A shorter interval takes effect at once: the next batch is due no later than the change plus it.
		quick := ep
		quick.Interval, quick.UpdatedAt = time.Second, t0
		if err := st.Feed.UpdateEndpoint(ctx, quick, false); err != nil {
			t.Fatal(err)
		}
		got, _ = st.Feed.Endpoint(ctx, "ep1")
		sooner := state
		sooner.NextAt = t0.Add(time.Second)
		if got.Interval != time.Second || !reflect.DeepEqual(got.State, sooner) {
			t.Errorf("after a shorter interval: every %s, state %+v, want %+v", got.Interval, got.State, sooner)
		}
		if err := st.Feed.UpdateEndpoint(ctx, ep, true); err != nil {
			t.Fatal(err)
		}
		got, _ = st.Feed.Endpoint(ctx, "ep1")
		if !got.Enabled() || !got.State.FailingSince.IsZero() || got.State.Batch == nil || got.State.Batch.Attempts != 0 ||
			!got.State.NextAt.Equal(ep.UpdatedAt) || got.State.Cursor != 5 {
			t.Errorf("after reset: %+v", got.State)
		}
		if n, err := st.Feed.PruneDeliveries(ctx, t0.Add(90*time.Second), 10); err != nil || n != 1 {
			t.Errorf("pruned %d (%v), want 1", n, err)
		}
		if err := st.Feed.DeleteEndpoint(ctx, "ep1"); err != nil {
			t.Fatal(err)
		}
		for name, err := range map[string]error{
			"delete":    st.Feed.DeleteEndpoint(ctx, "ep1"),
			"update":    st.Feed.UpdateEndpoint(ctx, ep, false),
			"saveState": st.Feed.SaveState(ctx, "ep1", "inst-a", state, &feed.Delivery{ID: "d3"}),
			"fixBatch":  st.Feed.FixBatch(ctx, "ep1", "inst-a", state),
		} {
			if !errors.Is(err, followed.ErrNotFound) {
				t.Errorf("%s after delete: %v", name, err)
			}
		}
		if ds, err := st.Feed.Deliveries(ctx, "ep1", 10); err != nil || len(ds) != 0 {
			t.Errorf("log after delete: %v (%v)", ds, err)
		}
		if eps, err := st.Feed.Endpoints(ctx); err != nil || len(eps) != 0 {
			t.Errorf("endpoints after delete: %v (%v)", eps, err)
		}
		if _, err := st.Feed.ClaimEndpoint(ctx, "ep1", "inst-a", t0.Add(time.Hour), t0.Add(2*time.Hour)); !errors.Is(err, followed.ErrNotFound) {
			t.Errorf("claim after delete: %v", err)
		}
	})

	runFeedLeases(t, open)
}
