package mongo

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mdb "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/engage-email/engage/alerts"
	"github.com/engage-email/engage/consent"
	"github.com/engage-email/engage/feed"
	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/inbound"
	"github.com/engage-email/engage/store"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestBuildersGolden pins every filter, update and pipeline the backend sends, as canonical Extended
// JSON, so a change to a query shows up in review as a diff of what the server will run.
func TestBuildersGolden(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	yes := true
	cur := &followed.Cursor{At: at, ID: "01h0000000000000000000000"}
	for _, tc := range []struct {
		name string
		doc  any
	}{
		{"messages-owner", messagesPipeline(followed.MessageQuery{Owner: "rep@contoso.com", Limit: 21})},
		{"messages-all-filters", messagesPipeline(followed.MessageQuery{Owner: "rep@contoso.com", From: at, To: at.Add(24 * time.Hour),
			Following: &yes, Search: "a.b+c@fabrikam", After: cur, Limit: 21})},
		{"messages-search", messagesPipeline(followed.MessageQuery{Search: "100% off_", Limit: 21})},
		{"events-page", eventsFilter(followed.EventQuery{MessageID: "m1", After: cur, Limit: 20})},
		{"summary-org", summaryPipeline(followed.SummaryQuery{})},
		{"summary-owner-range", summaryPipeline(followed.SummaryQuery{Owner: "rep@contoso.com", From: at, To: at.Add(time.Hour)})},
		{"median-odd", medianPipeline(followed.SummaryQuery{Owner: "rep@contoso.com"}, 5)},
		{"median-even", medianPipeline(followed.SummaryQuery{}, 4)},
		{"counters-opens", counterUpdate(messageDelta{opens: 2, uniqueOpens: 1, firstOpen: at.UnixMilli(), lastOpen: at.Add(time.Minute).UnixMilli()})},
		{"counters-clicks-only", counterUpdate(messageDelta{clicks: 3, uniqueClicks: 2, machineClicks: 1})},
		{"relabel-counters", relabelUpdate(messageDelta{opens: -2, machineOpens: 2, uniqueOpens: -1, clicks: -1, machineClicks: 1})},
		{"relabel-link", linkRelabelUpdate(-2, -1)},
		{"audience-claims", audienceFilter([]audienceKey{{"m1", 0, "open"}, {"m1", -1, "link:2"}})},
		{"alerts-newest", alertsFilter(alerts.AlertQuery{Owner: "rep@contoso.com", UnreadOnly: true, Before: 40, Limit: 20})},
		{"alerts-replay", alertsFilter(alerts.AlertQuery{Owner: "rep@contoso.com", After: 7, Ascending: true, Limit: 100})},
		{"reminders-due", dueReminders(at)},
		{"reminders-claim", claimUpdate("instance-a", at.Add(30*time.Second))},
		{"sequence-reserve", incSeq(3)},
		{"engagements", engagementsPipeline(41, 1000)},
		{"recipient-engagement", recipientEngagementPipeline([]string{"ann@fabrikam.com"})},
		{"domain-engagement", localEngagementPipeline("fabrikam.com")},
		{"org-engagement", localEngagementPipeline("")},
		{"domain-zone", domainZonePipeline("fabrikam.com")},
		{"template-stats", templateStatsPipeline("intro")},
		{"jobs-due", dueJobs(at)},
		{"jobs-claim", jobClaim("instance-a", at.Add(5*time.Minute))},
		{"message-guard", bumpGuard()},
		{"renders-update", rendersUpdate(followed.Message{Following: false, NotFollowedReason: "consent"}, `["no links"]`)},
		{"export-messages", exportProjection("messages")},
		{"export-recipients", exportProjection("recipients")},
		{"export-delivery-jobs", exportProjection("delivery_jobs")},
		{"jobs-held", heldBy("instance-a", "m1")},
		{"jobs-lease-write", leaseWrite()},
		{"preferences-latest", latestPreferencesPipeline([]string{"ann@fabrikam.com", "fabrikam.com"})},
		{"audit-page", auditFilter(consent.AuditQuery{Target: "ann@fabrikam.com", BeforeSeq: 9, Limit: 50})},
		{"erase-text", textHolding("html", "ann.o'neil+x@fabrikam.com")},
		{"erase-audit", auditHolding("ann.o'neil+x@fabrikam.com")},
		{"erase-events", ownEvents("m1", 2)},
		{"early-opens-page", personOpensAfter(at.UnixMilli(), "e1", at.Add(10*time.Minute).UnixMilli())},
		{"early-opens-later-activity", laterActivity("m1", 0, at.UnixMilli(), "e1")},
		{"early-opens-earlier-action", earlierAction("m1", 0, at.UnixMilli(), "e1")},
		{"alerts-watch-inserts", alertInsertsPipeline()},
		{"alerts-unannounced-first-opens", unannouncedFirstOpensPipeline(at.Add(-24*time.Hour).UnixMilli(), 500)},
		{"inbound-enqueue", enqueueUpdate(inbound.Item{ID: "n1", Kind: inbound.ItemMessage, Mailbox: "rep@contoso.com", GraphID: "AAMk1", EnqueuedAt: at})},
		{"inbound-enqueue-raw", enqueueUpdate(inbound.Item{ID: "r1", Kind: inbound.ItemRaw, Mailbox: "rep@contoso.com", Raw: []byte("From: a@x.com\r\n\r\nhi"), EnqueuedAt: at})},
		{"inbound-due", dueInbound(at)},
		{"inbound-held", heldItem("instance-a", "n1")},
		{"inbound-finish", finishUpdate(at)},
		{"inbound-retry", retryUpdate(at.Add(time.Minute), "graph down", false)},
		{"inbound-retry-dead", retryUpdate(at.Add(time.Hour), "gave up", true)},
		{"inbound-purge", purgeFilter(at)},
		{"inbound-subscription", subscriptionUpsert(inbound.Subscription{ID: "s1", Mailbox: "Rep@Contoso.com", ClientState: "secret",
			ExpiresAt: at.Add(72 * time.Hour), CreatedAt: at})},
		{"inbound-active-senders", sentSince(at)},
		{"inbound-sent-as", sentAs("<r0@contoso.com>")},
		{"inbound-conversation", inConversation("conv-1")},
		{"inbound-engaged-since", engagedSincePipeline("ann@fabrikam.com", at.UnixMilli())},
		{"inbound-soft-bounce", softBounceClaim("ann@fabrikam.com")},
		{"inbound-streak", streakUpdate(3, at)},
		{"feed-responses", responsesPipeline(feed.Query{After: 40, Limit: 100, Kinds: []followed.EventKind{followed.Opened, followed.Replied}}, 140)},
		{"feed-responses-machine", responsesPipeline(feed.Query{After: 0, Through: 9, Limit: 5, Kinds: []followed.EventKind{followed.LinkClicked},
			IncludeMachine: true}, 9)},
		{"feed-endpoint-insert", endpointInsert(feed.Endpoint{ID: "ep1", URL: "https://crm.fabrikam.com/hook", Secret: "s3cret",
			Categories: []feed.Category{feed.Open, feed.Reply}, Interval: time.Minute, CreatedBy: "admin@contoso.com", CreatedAt: at,
			UpdatedBy: "admin@contoso.com", UpdatedAt: at, State: feed.State{Cursor: 41, NextAt: at}})},
		{"feed-endpoint-update", endpointUpdate(feed.Endpoint{ID: "ep1", URL: "https://crm.fabrikam.com/v2", Secret: "s3cret",
			Categories: []feed.Category{feed.Click}, Interval: time.Hour, UpdatedBy: "admin@contoso.com", UpdatedAt: at}, false)},
		{"feed-endpoint-reset", endpointUpdate(feed.Endpoint{ID: "ep1", URL: "https://crm.fabrikam.com/v2", Secret: "s3cret",
			Categories: []feed.Category{feed.Click}, Interval: time.Hour, UpdatedBy: "admin@contoso.com", UpdatedAt: at}, true)},
		{"feed-state-batch", stateFields(feed.State{Cursor: 41, NextAt: at.Add(time.Minute), FailingSince: at, Batch: &feed.Batch{Key: "k1",
			First: 42, Last: 50, Through: 52, Categories: []feed.Category{feed.Open}, Attempts: 2, FormedAt: at}})},
		{"feed-deliveries-prune", deliveriesBefore(at)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			golden(t, tc.name, tc.doc)
		})
	}
}

// extJSON renders a document, or a pipeline wrapped as {"pipeline": [...]}, as indented canonical
// Extended JSON, which keeps BSON types (int64 versus int32) visible.
// golden compares doc, as canonical Extended JSON, with testdata/<name>.json, rewriting it under -update.
func golden(t *testing.T, name string, doc any) {
	t.Helper()
	got, err := extJSON(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", name+".json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s changed (run with -update if intended):\n got %s\nwant %s", name, got, want)
	}
}

func extJSON(doc any) ([]byte, error) {
	if p, ok := doc.(bson.A); ok {
		doc = bson.D{{Key: "pipeline", Value: p}}
	}
	out, err := bson.MarshalExtJSONIndent(doc, true, false, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

func TestUnavailableErrorsAreMarked(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"plain", os.ErrNotExist, false},
		{"not found is not unavailable", followed.ErrNotFound, false},
		{"duplicate key is the caller's", mdb.CommandError{Code: 11000, Message: "E11000"}, false},
		{"network error", mdb.CommandError{Code: 6, Message: "connection reset", Labels: []string{"NetworkError"}}, true},
		{"no primary", topology.ServerSelectionError{Wrapped: errors.New("no primary")}, true},
		{"client closed", mdb.ErrClientDisconnected, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := unavailable(tc.err); got != tc.want {
				t.Errorf("unavailable(%v) = %v, want %v", tc.err, got, tc.want)
			}
			if got := errors.Is(fail("read", tc.err), store.ErrUnavailable); got != tc.want {
				t.Errorf("fail(%v) marked unavailable = %v, want %v", tc.err, got, tc.want)
			}
			if !strings.Contains(fail("read", tc.err).Error(), tc.err.Error()) {
				t.Errorf("fail(%v) lost the cause", tc.err)
			}
		})
	}
}

// TestIndexesGolden pins every collection's indexes, so that adding, dropping or reordering one (which
// the queries' plans and the import's unique keys rely on) shows up in review as a diff.
func TestIndexesGolden(t *testing.T) {
	doc := bson.D{}
	for _, c := range collections() {
		ixs := bson.A{}
		for _, ix := range c.indexes {
			ixs = append(ixs, bson.D{{Key: "keys", Value: ix.keys}, {Key: "unique", Value: ix.unique}})
		}
		doc = append(doc, bson.E{Key: c.name, Value: ixs})
	}
	golden(t, "indexes", doc)
}
