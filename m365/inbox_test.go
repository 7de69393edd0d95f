package m365

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/engage-email/engage/consent"
	"github.com/engage-email/engage/delivery"
	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/inbound"
	"github.com/engage-email/engage/m365/m365test"
	"github.com/engage-email/engage/store/sqlite"
)

const rep = "rep@contoso.com"

// clock is a fake clock the tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.now = c.now.Add(d) }

type inboxRig struct {
	cloud *cloud
	db    *sqlite.DB
	proc  *inbound.Processor
	mgr   *inbound.Manager
	clock *clock
	hook  *httptest.Server
}

// newInboxRig is a fake Graph, the embedded store with one message sent by rep to ann (internet id
// <sent-1@contoso.com>), and Engage's notification endpoint as a TLS server Graph can reach.
// startHooks serves the Graph notification endpoints of proc, as server does, to the fake Graph, and
// returns them with an inbound manager that subscribes through them.
func startHooks(t *testing.T, c *cloud, db *sqlite.DB, proc *inbound.Processor, clk *clock) (*httptest.Server, *inbound.Manager) {
	t.Helper()
	hook := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok := r.URL.Query().Get("validationToken"); tok != "" {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, tok)
			return
		}
		body, _ := io.ReadAll(r.Body)
		ns, err := inbound.ParseNotifications(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if _, err := proc.Accept(r.Context(), ns); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(hook.Close)
	c.graph.SetNotifyClient(hook.Client())
	c.graph.SetClock(clk.Now)
	mgr, err := inbound.NewManager(db, NewInbox(c.client), proc, inbound.ManagerOptions{NotificationURL: hook.URL + "/hooks/graph",
		LifecycleURL: hook.URL + "/hooks/graph/lifecycle", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return hook, mgr
}

func newInboxRig(t *testing.T) *inboxRig {
	t.Helper()
	ctx := context.Background()
	c := newCloud(t, nil)
	db := sqlite.OpenTemp(t)
	clk := &clock{now: time.Now().UTC().Truncate(time.Second)}
	m := followed.Message{ID: "m1", Owner: rep, Subject: "Offer", HTML: "<p>x</p>", Individual: true, Following: true,
		CreatedAt: clk.Now(), Warnings: []string{}, Recipients: []followed.Recipient{{Email: "ann@fabrikam.com", Kind: followed.KindTo}},
		Renders: []followed.Render{{Index: 0, Recipient: 0, Targets: []int{0}, HTML: "x", Tracked: true}}}
	if err := db.CreateMessage(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateJob(ctx, delivery.Job{MessageID: "m1", Owner: rep, Status: delivery.StatusScheduled, DueAt: clk.Now(), CreatedAt: clk.Now()}); err != nil {
		t.Fatal(err)
	}
	js, err := db.ClaimDueJobs(ctx, "w", clk.Now(), time.Minute, 1)
	if err != nil || len(js) != 1 {
		t.Fatal(js, err)
	}
	if err := db.RecordDraft(ctx, "w", delivery.RenderSend{MessageID: "m1", DraftID: "d", InternetMessageID: "<sent-1@contoso.com>", ConversationID: "conv-1"}); err != nil {
		t.Fatal(err)
	}
	js[0].Status, js[0].SentAt = delivery.StatusSent, clk.Now()
	if err := db.FinishJob(ctx, "w", js[0]); err != nil {
		t.Fatal(err)
	}
	consents, err := consent.NewService(ctx, db, consent.Options{Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	proc := inbound.NewProcessor(db, db, consents, NewInbox(c.client), inbound.Options{Now: clk.Now})
	hook, mgr := startHooks(t, c, db, proc, clk)
	return &inboxRig{cloud: c, db: db, proc: proc, mgr: mgr, clock: clk, hook: hook}
}

func (r *inboxRig) subscription(t *testing.T) inbound.Subscription {
	t.Helper()
	subs, err := r.db.InboxSubscriptions(context.Background())
	if err != nil || len(subs) != 1 {
		t.Fatalf("subscriptions %+v %v, want one", subs, err)
	}
	return subs[0]
}

func (r *inboxRig) replies(t *testing.T) followed.Counters {
	t.Helper()
	if _, err := r.proc.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	m, err := r.db.Message(context.Background(), "m1")
	if err != nil {
		t.Fatal(err)
	}
	return m.Counters
}

func reply(subject string) m365test.InboundMail {
	return m365test.InboundMail{From: "ann@fabrikam.com", Subject: subject, Text: "Yes, let's talk.",
		Headers: map[string]string{"In-Reply-To": "<sent-1@contoso.com>"}}
}

func TestInboxSubscribeNotifyRenewAndCatchUp(t *testing.T) {
	ctx := context.Background()
	r := newInboxRig(t)

	// Sync subscribes the sender; the fake Graph ran the validation handshake against the hook.
	if err := r.mgr.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	sub := r.subscription(t)
	onGraph := r.cloud.graph.Subscriptions()[sub.ID]
	if onGraph == nil || onGraph["clientState"] != sub.ClientState || onGraph["resource"] != "users/rep@contoso.com/mailFolders('inbox')/messages" ||
		!sub.ExpiresAt.Equal(r.clock.Now().Add(72*time.Hour)) {
		t.Fatalf("subscription %+v on Graph %+v", sub, onGraph)
	}

	// A reply arrives and Graph notifies: one reply, counted once even when notified twice.
	id := r.cloud.graph.Deliver(rep, reply("Re: Offer"))
	for range 2 {
		if codes, err := r.cloud.graph.Notify(ctx, rep, id); err != nil || len(codes) != 1 || codes[0] != http.StatusAccepted {
			t.Fatalf("notify: %v %v", codes, err)
		}
	}
	if c := r.replies(t); c.Replies != 1 {
		t.Fatalf("replies %d, want 1", c.Replies)
	}

	// Before expiry nothing is renewed; within RenewBefore it is, and the new expiry is kept.
	r.clock.Add(59 * time.Hour)
	if err := r.mgr.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := r.subscription(t); !got.ExpiresAt.Equal(sub.ExpiresAt) {
		t.Fatalf("renewed too early: %v", got.ExpiresAt)
	}
	r.clock.Add(2 * time.Hour)
	if err := r.mgr.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := r.subscription(t); got.ID != sub.ID || !got.ExpiresAt.Equal(r.clock.Now().Add(72*time.Hour)) {
		t.Fatalf("after renewal: %+v", got)
	}

	// Graph loses the subscription while two replies arrive unnotified: the next renewal finds it gone,
	// subscribes again and the delta catch-up (two pages) finds both.
	r.cloud.graph.DropSubscription(sub.ID)
	r.cloud.graph.Deliver(rep, reply("Re: Offer (2)"))
	r.cloud.graph.Deliver(rep, reply("Re: Offer (3)"))
	r.clock.Add(61 * time.Hour)
	if err := r.mgr.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	renewed := r.subscription(t)
	if renewed.ID == sub.ID || r.cloud.graph.Subscriptions()[renewed.ID] == nil {
		t.Fatalf("not subscribed again: %+v", renewed)
	}
	if c := r.replies(t); c.Replies != 3 {
		t.Fatalf("replies %d after catch-up, want 3", c.Replies)
	}
	// A second catch-up starts from the saved delta link and finds nothing new.
	if err := r.mgr.CatchUpAll(ctx); err != nil {
		t.Fatal(err)
	}
	if c := r.replies(t); c.Replies != 3 {
		t.Fatalf("replies %d after a second catch-up, want 3", c.Replies)
	}
}

func TestInboxLifecycleAndBadNotifications(t *testing.T) {
	ctx := context.Background()
	r := newInboxRig(t)
	if err := r.mgr.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	sub := r.subscription(t)

	// Wrong client state, unknown subscription: answered, dropped, nothing queued.
	for _, body := range []string{
		`{"value":[{"subscriptionId":"` + sub.ID + `","clientState":"guess","resourceData":{"id":"x"}}]}`,
		`{"value":[{"subscriptionId":"nope","clientState":"` + sub.ClientState + `","resourceData":{"id":"x"}}]}`,
	} {
		res, err := r.hook.Client().Post(r.hook.URL+"/hooks/graph", "application/json", stringsReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	if n, _ := r.db.InboundPending(ctx); n != 0 {
		t.Fatalf("%d bad notifications queued", n)
	}

	// A missed notification: the catch-up finds the reply.
	r.cloud.graph.Deliver(rep, reply("Re: Offer"))
	if code, err := r.cloud.graph.Lifecycle(ctx, sub.ID, inbound.LifecycleMissed); err != nil || code != http.StatusAccepted {
		t.Fatalf("lifecycle: %d %v", code, err)
	}
	if c := r.replies(t); c.Replies != 1 {
		t.Fatalf("replies %d after missed, want 1", c.Replies)
	}
	// Reauthorization renews the same subscription; removal makes a new one.
	r.clock.Add(time.Hour)
	if code, err := r.cloud.graph.Lifecycle(ctx, sub.ID, inbound.LifecycleReauthorize); err != nil || code != http.StatusAccepted {
		t.Fatalf("lifecycle: %d %v", code, err)
	}
	r.replies(t)
	if got := r.subscription(t); got.ID != sub.ID || !got.ExpiresAt.Equal(r.clock.Now().Add(72*time.Hour)) {
		t.Fatalf("after reauthorization: %+v", got)
	}
	if code, err := r.cloud.graph.Lifecycle(ctx, sub.ID, inbound.LifecycleRemoved); err != nil || code != http.StatusAccepted {
		t.Fatalf("lifecycle: %d %v", code, err)
	}
	r.cloud.graph.DropSubscription(sub.ID)
	r.replies(t)
	if got := r.subscription(t); got.ID == sub.ID {
		t.Fatalf("removed subscription kept: %+v", got)
	}
}

func TestInboxMessageOfAnotherMailboxIsNotFound(t *testing.T) {
	r := newInboxRig(t)
	id := r.cloud.graph.Deliver(rep, reply("Re: Offer"))
	_, err := NewInbox(r.cloud.client).Message(context.Background(), "other@contoso.com", id)
	if !errors.Is(err, followed.ErrNotFound) {
		t.Fatalf("err %v, want followed.ErrNotFound", err)
	}
}

func stringsReader(s string) io.Reader { return strings.NewReader(s) }
