package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/engage-email/engage/alerts"
	"github.com/engage-email/engage/consent"
	"github.com/engage-email/engage/feed"
	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/store/sqlite"
)

// integrationUser is the CRM's identity in local mode: it may read the response feed, nothing more.
const integrationUser = "crm@contoso.com"

type feedParts struct {
	svc     *feed.Service
	optOuts *feed.OptOuts
	done    chan struct{}
}

// startFeed runs the response feed with its dispatcher; webhooks may reach the test's own receivers
// on loopback over plain http.
func startFeed(ctx context.Context, db *sqlite.DB, rec *followed.Recorder, consents *consent.Service, alertSvc *alerts.Service,
	log *slog.Logger) feedParts {
	p := feedParts{
		svc: feed.NewService(db, feed.Options{Destinations: feed.Destinations{AllowHTTP: true, AllowPrivate: true},
			Poll: 50 * time.Millisecond, Timeout: 2 * time.Second, Alerts: alertSvc, Log: log}),
		optOuts: feed.NewOptOuts(db, rec, consents),
		done:    make(chan struct{}),
	}
	go func() { defer close(p.done); p.svc.Run(ctx) }()
	return p
}

const responsesQuery = `query($since: String, $first: Int, $cats: [ResponseCategory!]) {
	responses(since: $since, first: $first, categories: $cats) {
		records { id cursor category message { id subject owner } recipient at details { kind url device { type } machine } }
		cursor hasMore } }`

type responsesOut struct {
	Responses struct {
		Records []struct {
			ID, Cursor, Category string
			Message              struct{ ID, Subject, Owner string }
			Recipient            *string
			At                   time.Time
			Details              struct {
				Kind    string
				URL     *string
				Machine bool
			}
		}
		Cursor  string
		HasMore bool
	}
}

func TestResponsesOverHTTP(t *testing.T) {
	e := start(t)
	m := e.follow(t, repA, true, offerHTML, "ann@fabrikam.com", "bob@fabrikam.com").FollowMessage
	annPixel := pixelRe.FindStringSubmatch(m.Renders[0].HTML)[1]
	bobClick := hrefRe.FindStringSubmatch(m.Renders[1].HTML)[1]
	get(t, "GET", annPixel, outlookUA).Body.Close()
	get(t, "GET", bobClick, outlookUA).Body.Close()

	t.Run("who may read it", func(t *testing.T) {
		for _, tc := range []struct{ user, code string }{{"", "UNAUTHENTICATED"}, {repA, "FORBIDDEN"}, {adminUser, ""}, {integrationUser, ""}} {
			if r := e.gql(t, tc.user, responsesQuery, nil, nil); r.code() != tc.code {
				t.Errorf("%q: %q, want %q", tc.user, r.code(), tc.code)
			}
		}
	})
	t.Run("records", func(t *testing.T) {
		var out responsesOut
		e.mustGQL(t, integrationUser, responsesQuery, nil, &out)
		rs := out.Responses.Records
		if len(rs) != 2 || out.Responses.HasMore {
			t.Fatalf("responses: %+v", out.Responses)
		}
		if rs[0].Category != "OPEN" || *rs[0].Recipient != "ann@fabrikam.com" || rs[0].Message.ID != m.ID ||
			rs[0].Message.Subject != "Offer" || rs[0].Message.Owner != repA || rs[0].Details.Kind != "OPENED" {
			t.Errorf("open: %+v", rs[0])
		}
		if rs[1].Category != "CLICK" || *rs[1].Recipient != "bob@fabrikam.com" || *rs[1].Details.URL != "https://contoso.example/offer" {
			t.Errorf("click: %+v", rs[1])
		}
	})
	// A cursor ahead of the log (another Engage's, or past events since erased) goes on from its end:
	// the next open is read, where waiting for the log to reach the cursor would skip everything.
	t.Run("a cursor ahead of the log", func(t *testing.T) {
		var ahead responsesOut
		e.mustGQL(t, integrationUser, responsesQuery, map[string]any{"since": feed.EncodeCursor(999_999_999)}, &ahead)
		var all responsesOut
		e.mustGQL(t, integrationUser, responsesQuery, nil, &all)
		if len(ahead.Responses.Records) != 0 || ahead.Responses.Cursor != all.Responses.Cursor {
			t.Fatalf("from a cursor ahead: %+v, want no records and the log's end %s", ahead.Responses, all.Responses.Cursor)
		}
		get(t, "GET", pixelRe.FindStringSubmatch(m.Renders[1].HTML)[1], outlookUA).Body.Close()
		var next responsesOut
		e.mustGQL(t, integrationUser, responsesQuery, map[string]any{"since": ahead.Responses.Cursor}, &next)
		if len(next.Responses.Records) != 1 || *next.Responses.Records[0].Recipient != "bob@fabrikam.com" {
			t.Fatalf("after the end: %+v, want bob's open", next.Responses.Records)
		}
	})
	t.Run("bad input", func(t *testing.T) {
		for _, tc := range []struct {
			name, code string
			vars       map[string]any
		}{
			{"cursor", "BAD_USER_INPUT", map[string]any{"since": "not-a-cursor"}},
			{"negative", "BAD_USER_INPUT", map[string]any{"first": -1}},
			{"category", "GRAPHQL_VALIDATION_FAILED", map[string]any{"cats": []string{"FORWARD"}}},
		} {
			if r := e.gql(t, adminUser, responsesQuery, tc.vars, nil); r.code() != tc.code {
				t.Errorf("%s: %q %+v", tc.name, r.code(), r.Errors)
			}
		}
	})
}

// TestResponsesCursorWhileEventsArrive pages with a small page size while recipients keep opening:
// every open is read once, none is skipped, whatever the interleaving.
func TestResponsesCursorWhileEventsArrive(t *testing.T) {
	e := start(t)
	m := e.follow(t, repA, true, offerHTML, "ann@fabrikam.com").FollowMessage
	pixel := pixelRe.FindStringSubmatch(m.Renders[0].HTML)[1]
	const hits = 60
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range hits / 3 {
				res, err := http.Get(strings.ReplaceAll(pixel, "&amp;", "&"))
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				res.Body.Close()
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	seen := map[string]int{}
	var cursor any
	for finished := false; ; {
		select {
		case <-done:
			finished = true
		default:
		}
		var out responsesOut
		e.mustGQL(t, integrationUser, responsesQuery, map[string]any{"since": cursor, "first": 4}, &out)
		for _, r := range out.Responses.Records {
			seen[r.ID]++
		}
		cursor = out.Responses.Cursor
		if finished && !out.Responses.HasMore {
			break // every hit was answered, so stored, before this read
		}
	}
	if len(seen) != hits {
		t.Errorf("read %d opens, want %d", len(seen), hits)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s read %d times", id, n)
		}
	}
}

func TestWebhookOverHTTP(t *testing.T) {
	e := start(t)
	const secret = "crm-webhook-secret-0123456789abcdef"
	var mu sync.Mutex
	got := map[string]int{}
	keys := map[string]int{}
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := feed.Verify([]byte(secret), r.Header.Get(feed.SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
			t.Errorf("receiver: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var p feed.Payload
		if err := json.Unmarshal(body, &p); err != nil {
			t.Errorf("receiver: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		if keys[r.Header.Get(feed.IdempotencyHeader)]++; keys[r.Header.Get(feed.IdempotencyHeader)] > 1 {
			return // seen: stored once already
		}
		for _, rec := range p.Records {
			got[string(rec.Category)+" "+rec.Recipient]++
		}
	}))
	defer rcv.Close()

	const register = `mutation($in: RegisterWebhookInput!) { registerWebhook(input: $in) { id url categories batchIntervalSeconds enabled cursor } }`
	for name, tc := range map[string]struct {
		in     map[string]any
		phrase string
	}{
		"short secret": {map[string]any{"url": rcv.URL, "secret": "short"}, "secret"},
		"bad URL":      {map[string]any{"url": "ftp://crm.example.com/h", "secret": secret}, "URL"},
		"zero batch":   {map[string]any{"url": rcv.URL, "secret": secret, "batchIntervalSeconds": 0}, "batchIntervalSeconds 0 would send every record alone"},
		"batch past a day": {map[string]any{"url": rcv.URL, "secret": secret, "batchIntervalSeconds": 86401},
			"batchIntervalSeconds 86401 is outside 1-86400"},
		// As nanoseconds it would wrap around to about a minute.
		"batch past a duration": {map[string]any{"url": rcv.URL, "secret": secret, "batchIntervalSeconds": 1<<55 + 60},
			"is outside 1-86400"},
	} {
		if r := e.gql(t, adminUser, register, map[string]any{"in": tc.in}, nil); r.code() != "BAD_USER_INPUT" ||
			!strings.Contains(r.Errors[0].Message, tc.phrase) {
			t.Errorf("%s: %q %+v, want BAD_USER_INPUT mentioning %q", name, r.code(), r.Errors, tc.phrase)
		}
	}
	// A cursor ahead of the log starts the endpoint at the log's end, like no cursor: waiting for the
	// log to reach it would skip everything until then.
	var ahead, now struct{ RegisterWebhook struct{ ID, Cursor string } }
	e.mustGQL(t, adminUser, register, map[string]any{"in": map[string]any{"url": rcv.URL + "/ahead", "secret": secret,
		"since": feed.EncodeCursor(999_999_999)}}, &ahead)
	e.mustGQL(t, adminUser, register, map[string]any{"in": map[string]any{"url": rcv.URL + "/now", "secret": secret}}, &now)
	if ahead.RegisterWebhook.Cursor != now.RegisterWebhook.Cursor {
		t.Fatalf("registered with a cursor ahead at %s, want the log's end %s", ahead.RegisterWebhook.Cursor, now.RegisterWebhook.Cursor)
	}
	for _, id := range []string{ahead.RegisterWebhook.ID, now.RegisterWebhook.ID} {
		e.mustGQL(t, adminUser, `mutation($id: ID!) { deleteWebhook(id: $id) }`, map[string]any{"id": id}, nil)
	}

	var reg struct {
		RegisterWebhook struct {
			ID, URL    string
			Categories []string
			Enabled    bool
		}
	}
	e.mustGQL(t, adminUser, register, map[string]any{"in": map[string]any{"url": rcv.URL + "/engage", "secret": secret,
		"categories": []string{"OPEN", "UNSUBSCRIPTION"}, "batchIntervalSeconds": 1}}, &reg)
	if ep := reg.RegisterWebhook; !ep.Enabled || len(ep.Categories) != 2 || ep.URL != rcv.URL+"/engage" {
		t.Fatalf("registered %+v", ep)
	}
	m := e.follow(t, repA, true, offerHTML, "ann@fabrikam.com", "bob@fabrikam.com").FollowMessage
	get(t, "GET", pixelRe.FindStringSubmatch(m.Renders[0].HTML)[1], outlookUA).Body.Close()
	get(t, "GET", pixelRe.FindStringSubmatch(m.Renders[1].HTML)[1], outlookUA).Body.Close()
	get(t, "GET", hrefRe.FindStringSubmatch(m.Renders[1].HTML)[1], outlookUA).Body.Close() // a CLICK: not asked for
	deadline := time.Now().Add(15 * time.Second)
	for {
		mu.Lock()
		n := got["OPEN ann@fabrikam.com"] + got["OPEN bob@fabrikam.com"]
		mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the receiver got %v", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var log struct {
		WebhookDeliveries []struct {
			Outcome        string
			StatusCode     int
			Records        int
			IdempotencyKey string
		}
	}
	// The receiver answers before the log row is written: read the log until it is there.
	for len(log.WebhookDeliveries) == 0 && time.Now().Before(deadline) {
		e.mustGQL(t, adminUser, `query($id: ID!) { webhookDeliveries(endpointId: $id) { outcome statusCode records idempotencyKey } }`,
			map[string]any{"id": reg.RegisterWebhook.ID}, &log)
		time.Sleep(20 * time.Millisecond)
	}
	if len(log.WebhookDeliveries) == 0 || log.WebhookDeliveries[len(log.WebhookDeliveries)-1].Outcome != "DELIVERED" ||
		!strings.HasPrefix(log.WebhookDeliveries[0].IdempotencyKey, reg.RegisterWebhook.ID+":") {
		t.Errorf("delivery log %+v", log.WebhookDeliveries)
	}
	mu.Lock()
	if len(got) != 2 {
		t.Errorf("the receiver got %v: only opens were asked for", got)
	}
	mu.Unlock()

	var list struct{ WebhookEndpoints []struct{ ID string } }
	e.mustGQL(t, adminUser, `{ webhookEndpoints { id } }`, nil, &list)
	if len(list.WebhookEndpoints) != 1 {
		t.Errorf("endpoints %+v", list)
	}
	e.mustGQL(t, adminUser, `mutation($id: ID!) { deleteWebhook(id: $id) }`, map[string]any{"id": reg.RegisterWebhook.ID}, nil)
	if r := e.gql(t, adminUser, `query($id: ID!) { webhookDeliveries(endpointId: $id) { id } }`,
		map[string]any{"id": reg.RegisterWebhook.ID}, nil); r.code() != "NOT_FOUND" {
		t.Errorf("log of a deleted endpoint: %q", r.code())
	}
}

var optOutRe = regexp.MustCompile(`href="([^"]+/t/u/[^"]+)"`)

func TestOptOutLink(t *testing.T) {
	e := start(t)
	e.Followed.SetOptOutLinks(true)
	m := e.follow(t, repA, true, "<html><body><p>Hi</p></body></html>", "ann@fabrikam.com").FollowMessage
	match := optOutRe.FindStringSubmatch(m.Renders[0].HTML)
	if match == nil || !strings.Contains(m.Renders[0].HTML, "Opt out of email tracking</a></p>") {
		t.Fatalf("no opt-out link in %s", m.Renders[0].HTML)
	}
	link := strings.ReplaceAll(match[1], "&amp;", "&")
	followable := func() bool {
		var out struct{ Followability struct{ Allowed []string } }
		e.mustGQL(t, repA, `{ followability(recipients: ["ann@fabrikam.com"]) { allowed } }`, nil, &out)
		return len(out.Followability.Allowed) == 1
	}
	for _, tc := range []struct {
		name, method, url string
		status            int
		says              string
		followable        bool
	}{
		{"GET asks to confirm, changes nothing", "GET", link, 200, `<form method="post">`, true},
		{"a forged link", "POST", link[:len(link)-3] + "AAA", 400, "not valid", true},
		{"POST opts out", "POST", link, 200, "ann@fabrikam.com will no longer be followed", false},
		{"POST again is harmless", "POST", link, 200, "will no longer be followed", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := http.DefaultClient.Do(mustRequest(t, tc.method, tc.url))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.status || !strings.Contains(string(body), tc.says) {
				t.Fatalf("%d %s", res.StatusCode, body)
			}
			if got := followable(); got != tc.followable {
				t.Errorf("followable = %v, want %v", got, tc.followable)
			}
		})
	}
	var out responsesOut
	e.mustGQL(t, adminUser, responsesQuery, map[string]any{"cats": []string{"UNSUBSCRIPTION"}}, &out)
	if rs := out.Responses.Records; len(rs) != 1 || *rs[0].Recipient != "ann@fabrikam.com" || rs[0].Details.Kind != "UNSUBSCRIBED" {
		t.Fatalf("unsubscriptions: %+v", rs)
	}
	var msg struct {
		Message struct {
			Interactions struct {
				Edges []struct{ Node struct{ Kind string } }
			}
		}
	}
	e.mustGQL(t, repA, `query($id: ID!) { message(id: $id) { interactions { edges { node { kind } } } } }`,
		map[string]any{"id": m.ID}, &msg)
	if es := msg.Message.Interactions.Edges; len(es) != 1 || es[0].Node.Kind != "UNSUBSCRIBED" {
		t.Errorf("timeline %+v", es)
	}
	// The next message to ann is not followed.
	again := e.follow(t, repA, true, "<p>Hi again</p>", "ann@fabrikam.com").FollowMessage
	if again.Following || optOutRe.MatchString(again.Renders[0].HTML) {
		t.Errorf("after opting out: following=%v, %s", again.Following, again.Renders[0].HTML)
	}
}

func mustRequest(t *testing.T, method, u string) *http.Request {
	t.Helper()
	if _, err := url.Parse(u); err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("User-Agent", fmt.Sprint("test ", method))
	return req
}
