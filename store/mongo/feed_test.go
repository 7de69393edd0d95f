package mongo

import (
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/engage-email/engage/feed"
)

// TestFeedLeaseGolden pins the documents behind webhook endpoint leases, as TestBuildersGolden does
// for the other builders: the claim's filter and update, the holder's filter, and the state writes.
func TestFeedLeaseGolden(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	st := feed.State{Cursor: 41, NextAt: at.Add(time.Minute), Batch: &feed.Batch{Key: "ep1:42-50", First: 42, Last: 50, Through: 52,
		Categories: []feed.Category{feed.Open}, FormedAt: at}}
	for _, tc := range []struct {
		name string
		doc  any
	}{
		{"feed-endpoint-claim", d{{Key: "filter", Value: claimableEndpoint("ep1", "instance-a", at)},
			{Key: "update", Value: claimUpdate("instance-a", at.Add(50*time.Second))}}},
		{"feed-endpoint-held", heldEndpoint("ep1", "instance-a")},
		{"feed-state-fix", leasedStateUpdate(st, false)},
		{"feed-state-release", leasedStateUpdate(feed.State{Cursor: 50, NextAt: at.Add(time.Minute)}, true)},
		{"feed-endpoint-insert-leased", endpointInsert(feed.Endpoint{ID: "ep2", URL: "https://crm.fabrikam.com/hook", Secret: "s3cret",
			Categories: []feed.Category{feed.Click}, Interval: time.Minute, CreatedAt: at, UpdatedAt: at, State: feed.State{NextAt: at},
			LeaseOwner: "instance-b", LeaseUntil: at.Add(time.Minute)})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			golden(t, tc.name, tc.doc)
		})
	}
}

// TestEndpointDocRoundTrip checks that a lease survives the document, and that an endpoint stored
// before leases existed (no lease fields) reads as free.
func TestEndpointDocRoundTrip(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		drop      bool
		wantOwner string
		wantUntil time.Time
	}{
		{"leased", false, "instance-b", at.Add(time.Minute)},
		{"stored before leases", true, "", time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := endpointInsert(feed.Endpoint{ID: "ep", Interval: time.Minute, CreatedAt: at, UpdatedAt: at, State: feed.State{NextAt: at},
				LeaseOwner: "instance-b", LeaseUntil: at.Add(time.Minute)})
			if tc.drop {
				doc = doc[:len(doc)-2] // lease_owner and lease_until come last
			}
			raw, err := bson.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			var x endpointDoc
			if err := bson.Unmarshal(raw, &x); err != nil {
				t.Fatal(err)
			}
			if ep := x.endpoint(); ep.LeaseOwner != tc.wantOwner || !ep.LeaseUntil.Equal(tc.wantUntil) {
				t.Errorf("lease %q until %s, want %q until %s", ep.LeaseOwner, ep.LeaseUntil, tc.wantOwner, tc.wantUntil)
			}
		})
	}
}
