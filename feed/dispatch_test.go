package feed_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/engage-email/engage/alerts"
	"github.com/engage-email/engage/auth"
	"github.com/engage-email/engage/feed"
	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/store/sqlite"
)

const secret = "test-secret-test-secret-test-secret-0001"

var admin = auth.Identity{Email: "admin@contoso.com", Admin: true}

// clock is a fake clock the tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t
	}
}
func (c *clock) Add(d time.Duration) { c.Set(c.Now().Add(d)) }

// receiver is a CRM's webhook endpoint: it verifies every delivery's signature against the fake clock,
// and stores each batch once per idempotency key, checking that a repeated key carries the same body.
type receiver struct {
	t     *testing.T
	clock *clock
	srv   *httptest.Server

	mu       sync.Mutex
	status   []int // answers to give, in order; 200 once they run out
	bodies   map[string][]byte
	keys     []string // first sight of each key, in order
	attempts map[string]int
	records  map[string]int // event id -> times stored
	hold     chan struct{}  // when set, requests wait on it (after being seen) before answering
	delay    time.Duration  // how long each request takes, to widen races between dispatchers
}

func newReceiver(t *testing.T, c *clock) *receiver {
	r := &receiver{t: t, clock: c, bodies: map[string][]byte{}, attempts: map[string]int{}, records: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if err := feed.Verify([]byte(secret), req.Header.Get(feed.SignatureHeader), body, r.clock.Now(), 5*time.Minute); err != nil {
		r.t.Errorf("receiver: %v", err)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	key := req.Header.Get(feed.IdempotencyHeader)
	var p feed.Payload
	if err := json.Unmarshal(body, &p); err != nil || p.Key != key {
		r.t.Errorf("receiver: body %s under key %q: %v", body, key, err)
	}
	r.mu.Lock()
	r.attempts[key]++
	hold := r.hold
	code := http.StatusOK
	if len(r.status) > 0 {
		code, r.status = r.status[0], r.status[1:]
	}
	if prev, seen := r.bodies[key]; seen {
		if !bytes.Equal(prev, body) {
			r.t.Errorf("receiver: key %s came back with another body:\n%s\n%s", key, prev, body)
		}
	} else if code == http.StatusOK {
		r.bodies[key] = body
		r.keys = append(r.keys, key)
		for _, rec := range p.Records {
			r.records[rec.ID]++
		}
	}
	delay := r.delay
	r.mu.Unlock()
	if hold != nil {
		<-hold
	}
	time.Sleep(delay)
	w.WriteHeader(code)
}

func (r *receiver) stored() (keys []string, records map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	records = map[string]int{}
	for k, v := range r.records {
		records[k] = v
	}
	return append([]string(nil), r.keys...), records
}

type fixture struct {
	db    *sqlite.DB
	svc   *feed.Service
	clock *clock
}

func newFixture(t *testing.T, db *sqlite.DB, c *clock, opts feed.Options) *fixture {
	opts.Destinations = feed.Destinations{AllowHTTP: true, AllowPrivate: true}
	opts.Now = c.Now
	if opts.Jitter == nil {
		opts.Jitter = func(n int64) int64 { return n - 1 } // the longest wait: the schedule's upper bound
	}
	return &fixture{db: db, svc: feed.NewService(db, opts), clock: c}
}

// opens stores n opens of message m (created when absent) and returns their ids.
func (f *fixture) opens(t *testing.T, m string, n int) []string {
	t.Helper()
	ctx := context.Background()
	if _, err := f.db.Message(ctx, m); err != nil {
		msg := followed.Message{ID: m, Owner: "rep@contoso.com", Subject: "Offer " + m, HTML: "<p>x</p>", Individual: true,
			Following: true, CreatedAt: f.clock.Now(), Recipients: []followed.Recipient{{Email: "ann@fabrikam.com", Kind: followed.KindTo}},
			Renders: []followed.Render{{Index: 0, Recipient: 0, Targets: []int{0}, HTML: "x", Tracked: true}}}
		if err := f.db.CreateMessage(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	var evs []followed.Event
	for range n {
		ev := followed.Event{ID: followed.NewID(f.clock.Now()), MessageID: m, Kind: followed.Opened, At: f.clock.Now(),
			Recipient: 0, Link: -1, Device: followed.Device{Type: followed.DeviceDesktop, OS: "Windows", Client: "Outlook"}}
		evs = append(evs, ev)
		ids = append(ids, ev.ID)
	}
	if _, err := f.db.RecordEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	return ids
}

func (f *fixture) register(t *testing.T, url string) feed.Endpoint {
	t.Helper()
	ep, err := f.svc.Register(context.Background(), admin, feed.EndpointInput{URL: url, Secret: secret, Interval: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

func (f *fixture) endpoint(t *testing.T, id string) feed.Endpoint {
	t.Helper()
	ep, err := f.db.Endpoint(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

func TestRetriesBackOffUntilDelivered(t *testing.T) {
	ctx := context.Background()
	c := &clock{now: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)}
	f := newFixture(t, sqlite.OpenTemp(t), c, feed.Options{})
	rcv := newReceiver(t, c)
	ep := f.register(t, rcv.srv.URL+"/hook")
	ids := f.opens(t, "m1", 3)

	f.svc.Tick(ctx) // registered a minute before its first batch is due
	if rcv.requests() != 0 {
		t.Fatal("delivered before the batch interval passed")
	}
	c.Add(time.Minute)
	const failures = 12
	for range failures {
		rcv.fail(http.StatusServiceUnavailable)
	}
	wait := feed.RetryBase
	for attempt := 1; attempt <= failures; attempt++ {
		t.Run(fmt.Sprintf("attempt %d", attempt), func(t *testing.T) {
			before := c.Now()
			f.svc.Tick(ctx)
			got := f.endpoint(t, ep.ID)
			if got.State.Batch == nil || got.State.Batch.Attempts != attempt {
				t.Fatalf("batch after attempt %d: %+v", attempt, got.State.Batch)
			}
			if want := before.Add(wait); !got.State.NextAt.Equal(want) {
				t.Errorf("next attempt at %s, want %s (a wait of %s)", got.State.NextAt, want, wait)
			}
			c.Add(wait - time.Second)
			f.svc.Tick(ctx) // not due yet: nothing is sent
			if n := rcv.attemptsOf(got.State.Batch.Key); n != attempt {
				t.Errorf("%d requests after %d attempts", n, attempt)
			}
			c.Add(time.Second)
			wait = min(2*wait, feed.RetryCap)
		})
	}
	f.svc.Tick(ctx)
	got := f.endpoint(t, ep.ID)
	if got.State.Batch != nil || !got.State.FailingSince.IsZero() || !got.Enabled() {
		t.Fatalf("after delivery: %+v", got.State)
	}
	keys, records := rcv.stored()
	if len(keys) != 1 || keys[0] != feed.BatchKey(ep.ID, got.State.Cursor-2, got.State.Cursor) || rcv.attemptsOf(keys[0]) != failures+1 {
		t.Fatalf("keys %v, %d requests", keys, rcv.requests())
	}
	for _, id := range ids {
		if records[id] != 1 {
			t.Errorf("record %s stored %d times", id, records[id])
		}
	}
	log, err := f.svc.Deliveries(ctx, admin, ep.ID, 100)
	if err != nil || len(log) != failures+1 {
		t.Fatalf("delivery log of %d rows (%v)", len(log), err)
	}
	if log[0].Outcome != feed.Delivered || log[0].StatusCode != 200 || log[0].Attempt != failures+1 || log[0].Records != 3 ||
		log[1].Outcome != feed.Failed || log[1].StatusCode != 503 || log[1].Error == "" {
		t.Errorf("log = %+v, %+v", log[0], log[1])
	}
}

func TestJitterStaysInTheUpperHalf(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		jitter func(int64) int64
		want   time.Duration
	}{
		{"least", func(int64) int64 { return 0 }, feed.RetryBase / 2},
		{"most", func(n int64) int64 { return n - 1 }, feed.RetryBase},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &clock{now: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)}
			f := newFixture(t, sqlite.OpenTemp(t), c, feed.Options{Jitter: tc.jitter})
			rcv := newReceiver(t, c)
			rcv.fail(500)
			ep := f.register(t, rcv.srv.URL)
			f.opens(t, "m", 1)
			c.Add(time.Minute)
			start := c.Now()
			f.svc.Tick(ctx)
			if got := f.endpoint(t, ep.ID).State.NextAt.Sub(start); got != tc.want {
				t.Errorf("waits %s, want %s", got, tc.want)
			}
		})
	}
}

func TestFailingForADayDisablesAndAlertsAdmins(t *testing.T) {
	ctx := context.Background()
	c := &clock{now: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)}
	db := sqlite.OpenTemp(t)
	alertSvc := alerts.New(db, db, alerts.Options{Now: c.Now})
	f := newFixture(t, db, c, feed.Options{Alerts: alertSvc, Admins: []string{"ops@contoso.com", "admin@contoso.com"}})
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) }))
	defer down.Close()
	ep := f.register(t, down.URL)
	f.opens(t, "m", 2)
	c.Add(time.Minute)
	start := c.Now()
	attempts := 0
	for f.endpoint(t, ep.ID).Enabled() {
		if attempts++; attempts > 100 {
			t.Fatal("still enabled after 100 attempts")
		}
		f.svc.Tick(ctx)
		c.Set(f.endpoint(t, ep.ID).State.NextAt)
	}
	got := f.endpoint(t, ep.ID)
	if got.State.DisabledAt.Sub(start) < feed.DisableAfter || got.State.DisabledAt.Sub(start) > feed.DisableAfter+feed.RetryCap {
		t.Errorf("disabled %s after the first failure", got.State.DisabledAt.Sub(start))
	}
	log, _ := f.svc.Deliveries(ctx, admin, ep.ID, 1)
	if len(log) != 1 || log[0].Outcome != feed.Disabled || log[0].StatusCode != http.StatusBadGateway {
		t.Errorf("last log row %+v", log)
	}
	// The alert goes before the endpoint is switched off, so a step that failed in between calls it
	// again: that stores nothing more.
	if err := alertSvc.WebhookDisabled(ctx, []string{"admin@contoso.com", "ops@contoso.com"}, ep.ID, ep.URL, "again",
		got.State.FailingSince, c.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	for _, owner := range []string{"admin@contoso.com", "ops@contoso.com"} {
		as, err := db.ListAlerts(ctx, alerts.AlertQuery{Owner: owner, Limit: 10})
		if err != nil || len(as) != 1 || as[0].Kind != alerts.WebhookDisabled || as[0].URL != ep.URL {
			t.Errorf("%s's alerts: %+v (%v)", owner, as, err)
		}
	}
	// Disabled: no more attempts, however long it waits.
	c.Add(48 * time.Hour)
	f.svc.Tick(ctx)
	if log, _ := f.svc.Deliveries(ctx, admin, ep.ID, 1000); len(log) != attempts {
		t.Errorf("%d log rows after %d attempts", len(log), attempts)
	}
	// An admin fixes the receiver and switches it back on: the pending batch goes at once.
	rcv := newReceiver(t, c)
	u := rcv.srv.URL
	if _, err := f.svc.Update(ctx, admin, ep.ID, feed.EndpointChange{URL: &u, Enable: true}); err != nil {
		t.Fatal(err)
	}
	f.svc.Tick(ctx)
	if keys, records := rcv.stored(); len(keys) != 1 || len(records) != 2 {
		t.Errorf("after re-enabling: keys %v, records %v", keys, records)
	}
}

// TestRestartLosesAndDuplicatesNothing stops the dispatcher twice: once after a failed attempt, and
// once while the receiver is storing a batch but before the answer arrives (as a crash would). The
// next process, on the same file, sends the pending batch again under its key; the receiver ends
// with every record exactly once.
func TestRestartLosesAndDuplicatesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "engage.db")
	c := &clock{now: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)}
	rcv := newReceiver(t, c)
	open := func() *fixture {
		db, err := sqlite.Open(context.Background(), path, sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return newFixture(t, db, c, feed.Options{MaxBatch: 4})
	}
	f := open()
	ep := f.register(t, rcv.srv.URL)
	want := f.opens(t, "m1", 6)
	c.Add(time.Minute)

	// Process 1: the first batch fails; it stops.
	rcv.fail(500)
	f.svc.Tick(context.Background())
	pending := f.endpoint(t, ep.ID).State.Batch
	if pending == nil {
		t.Fatal("no batch pending after a failure")
	}
	f.db.Close()

	// Process 2: the receiver stores the retry but the process dies before the answer.
	f = open()
	want = append(want, f.opens(t, "m2", 3)...)
	c.Set(f.endpoint(t, ep.ID).State.NextAt)
	rcv.mu.Lock()
	rcv.hold = make(chan struct{})
	rcv.mu.Unlock()
	ctx, crash := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.svc.Tick(ctx) }()
	for rcv.attemptsOf(pending.Key) < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	crash()
	<-done
	rcv.mu.Lock()
	close(rcv.hold)
	rcv.hold = nil
	rcv.mu.Unlock()
	if got := f.endpoint(t, ep.ID).State.Batch; got == nil || got.Key != pending.Key {
		t.Fatalf("after the crash the pending batch is %+v, want %s", got, pending.Key)
	}
	f.db.Close()

	// Process 3 delivers the pending batch again, then the rest.
	f = open()
	defer f.db.Close()
	want = append(want, f.opens(t, "m3", 2)...)
	for range 10 {
		f.svc.Tick(context.Background())
		c.Add(time.Minute)
	}
	keys, records := rcv.stored()
	if keys[0] != pending.Key || rcv.attemptsOf(pending.Key) != 3 {
		t.Errorf("keys %v; the first sent %d times", keys, rcv.attemptsOf(pending.Key))
	}
	if len(records) != len(want) {
		t.Errorf("%d records stored, want %d", len(records), len(want))
	}
	for _, id := range want {
		if records[id] != 1 {
			t.Errorf("record %s stored %d times", id, records[id])
		}
	}
}

// fail makes the next answers these status codes.
func (r *receiver) fail(codes ...int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status = append(r.status, codes...)
}

func (r *receiver) requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, a := range r.attempts {
		n += a
	}
	return n
}

func (r *receiver) attemptsOf(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.attempts[key]
}

func TestDialRefusesWhatRegistrationWould(t *testing.T) {
	// A name that resolved to a public address at registration may point inside later; the dialer
	// checks the address it actually connects to. Here the endpoint is stored as if that had happened.
	ctx := context.Background()
	c := &clock{now: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)}
	db := sqlite.OpenTemp(t)
	rcv := newReceiver(t, c)
	svc := feed.NewService(db, feed.Options{Destinations: feed.Destinations{AllowHTTP: true}, Now: c.Now})
	if err := db.CreateEndpoint(ctx, feed.Endpoint{ID: "ep", URL: rcv.srv.URL, Secret: secret, Categories: feed.AllCategories(),
		Interval: time.Minute, CreatedAt: c.Now(), UpdatedAt: c.Now(), State: feed.State{NextAt: c.Now()}}); err != nil {
		t.Fatal(err)
	}
	f := &fixture{db: db, svc: svc, clock: c}
	f.opens(t, "m", 1)
	svc.Tick(ctx)
	log, err := svc.Deliveries(ctx, admin, "ep", 10)
	if err != nil || len(log) != 1 || log[0].Outcome != feed.Failed || log[0].StatusCode != 0 || !strings.Contains(log[0].Error, "loopback") {
		t.Fatalf("log %+v (%v)", log, err)
	}
	if _, err := svc.Register(ctx, admin, feed.EndpointInput{URL: rcv.srv.URL, Secret: secret}); err == nil {
		t.Error("registration accepted a loopback receiver")
	}
	if n := rcv.requests(); n != 0 {
		t.Errorf("the receiver was reached %d times", n)
	}
}
