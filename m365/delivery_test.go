package m365

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/engage-email/engage/auth"
	"github.com/engage-email/engage/delivery"
	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/m365/m365test"
	"github.com/engage-email/engage/store/sqlite"
)

// sending is a real Engage send path (followed messages, delivery, SQLite) against the fake cloud.
type sending struct {
	*cloud
	db       *sqlite.DB
	followed *followed.Service
	mu       sync.Mutex
	now      time.Time
}

func newSending(t *testing.T) *sending {
	t.Helper()
	s := &sending{cloud: newCloud(t, nil), db: sqlite.OpenTemp(t), now: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)}
	keys, err := followed.LoadOrCreateKeyRing(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	if s.followed, err = followed.NewService(s.db, keys, "https://engage.example.com", followed.Limits{}); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *sending) clock() time.Time { s.mu.Lock(); defer s.mu.Unlock(); return s.now }
func (s *sending) set(t time.Time)  { s.mu.Lock(); s.now = t; s.mu.Unlock() }

func (s *sending) service(instance string) *delivery.Service {
	return delivery.New(s.db, s.db, NewMailer(s.client), delivery.Options{Instance: instance, Now: s.clock})
}

// follow stores alice's individual message to ann (To) and bob (Cc).
func (s *sending) follow(t *testing.T) followed.Message {
	t.Helper()
	m, err := s.followed.Follow(context.Background(), auth.Identity{Email: "alice@contoso.com"}, followed.FollowInput{
		Subject: "Proposal", HTML: `<p>Hi, see <a href="https://example.com/offer">the offer</a></p>`, Individual: true, Follow: true,
		Recipients: []followed.Recipient{{Email: "ann@fabrikam.com", Name: "Ann Lee"}, {Email: "bob@fabrikam.com", Kind: followed.KindCc}}})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// wantDraft is the Graph message resource Engage must post for render i of m.
func wantDraft(m followed.Message, i int) map[string]any {
	addr := func(email, name string) []any {
		ea := map[string]any{"address": email}
		if name != "" {
			ea["name"] = name
		}
		return []any{map[string]any{"emailAddress": ea}}
	}
	d := map[string]any{
		"@odata.type": "#microsoft.graph.message",
		"subject":     "Proposal",
		"body":        map[string]any{"contentType": "html", "content": m.Renders[i].HTML},
		"internetMessageHeaders": []any{
			map[string]any{"name": delivery.HeaderMessageID, "value": m.ID},
			map[string]any{"name": delivery.HeaderRender, "value": []string{"0", "1"}[i]},
		},
	}
	if i == 0 {
		d["toRecipients"] = addr("ann@fabrikam.com", "Ann Lee")
	} else {
		d["ccRecipients"] = addr("bob@fabrikam.com", "")
	}
	return d
}

type call struct{ method, path, caller string }

// checkCalls asserts the exact sequence of Graph calls, each with immutable ids and the expected identity.
func checkCalls(t *testing.T, reqs []m365test.Request, want []call) {
	t.Helper()
	if len(reqs) != len(want) {
		for _, r := range reqs {
			t.Logf("%s %s", r.Method, r.Path)
		}
		t.Fatalf("graph saw %d requests, want %d", len(reqs), len(want))
	}
	for i, w := range want {
		r := reqs[i]
		who, err := r.Caller()
		if r.Method != w.method || r.Path != w.path || who != w.caller || err != nil || r.Prefer != `IdType="ImmutableId"` {
			t.Errorf("request %d = %s %s as %q (%v) Prefer %q; want %s %s as %q with immutable ids", i, r.Method, r.Path, who, err,
				r.Prefer, w.method, w.path, w.caller)
		}
	}
}

func TestSendNowExactGraphRequests(t *testing.T) {
	s := newSending(t)
	ctx := context.Background()
	m := s.follow(t)
	alice := auth.Identity{Email: "alice@contoso.com", Token: s.userCaller(t, "alice@contoso.com").UserToken}
	j, err := s.service("api").Send(ctx, alice, m.ID, time.Time{})
	if err != nil || j.Status != delivery.StatusSent {
		t.Fatalf("send now: %+v, %v", j, err)
	}
	sends, err := s.db.RenderSends(ctx, m.ID)
	if err != nil || len(sends) != 2 {
		t.Fatalf("render sends %+v, %v", sends, err)
	}
	const base = "/users/alice@contoso.com/messages"
	checkCalls(t, s.graph.Requests(), []call{
		{"POST", base, "alice@contoso.com"}, {"POST", base + "/" + sends[0].DraftID + "/send", "alice@contoso.com"},
		{"POST", base, "alice@contoso.com"}, {"POST", base + "/" + sends[1].DraftID + "/send", "alice@contoso.com"},
	})
	reqs := s.graph.Requests()
	for i, r := range []m365test.Request{reqs[0], reqs[2]} {
		if !reflect.DeepEqual(r.Body, wantDraft(m, i)) {
			t.Errorf("draft %d body:\n got %#v\nwant %#v", i, r.Body, wantDraft(m, i))
		}
	}
	if reqs[1].Body != nil || reqs[3].Body != nil {
		t.Errorf("send bodies %v %v, want none", reqs[1].Body, reqs[3].Body)
	}
	for _, r := range sends {
		g, ok := s.graph.Message(r.DraftID)
		if !ok || g["isDraft"] != false || r.InternetMessageID != g["internetMessageId"] || r.ConversationID != g["conversationId"] || r.SentAt.IsZero() {
			t.Errorf("recorded %+v, graph holds %v", r, g)
		}
	}
	toks := s.authority.TokenRequests()
	if len(toks) != 1 || toks[0].RequestedTokenUse != "on_behalf_of" || toks[0].Assertion != alice.Token {
		t.Errorf("token requests %+v, want one on-behalf-of exchange of alice's token", toks)
	}
}

func TestScheduledSendExactGraphRequests(t *testing.T) {
	s := newSending(t)
	ctx := context.Background()
	m := s.follow(t)
	alice := auth.Identity{Email: "alice@contoso.com", Token: s.userCaller(t, "alice@contoso.com").UserToken}
	at := s.clock().Add(time.Hour)
	if j, err := s.service("api").Send(ctx, alice, m.ID, at); err != nil || j.Status != delivery.StatusScheduled {
		t.Fatalf("schedule: %+v, %v", j, err)
	}
	if n := len(s.graph.Requests()); n != 0 {
		t.Fatalf("scheduling made %d Graph calls, want none", n)
	}
	worker := s.service("worker")
	s.set(at)
	if n, err := worker.DeliverDue(ctx); err != nil || n != 1 {
		t.Fatalf("deliver due: %d, %v", n, err)
	}
	sends, _ := s.db.RenderSends(ctx, m.ID)
	const base = "/users/alice@contoso.com/messages"
	checkCalls(t, s.graph.Requests(), []call{
		{"POST", base, "app"}, {"POST", base + "/" + sends[0].DraftID + "/send", "app"},
		{"POST", base, "app"}, {"POST", base + "/" + sends[1].DraftID + "/send", "app"},
	})
	reqs := s.graph.Requests()
	for i, r := range []m365test.Request{reqs[0], reqs[2]} {
		if !reflect.DeepEqual(r.Body, wantDraft(m, i)) {
			t.Errorf("draft %d body:\n got %#v\nwant %#v", i, r.Body, wantDraft(m, i))
		}
	}
	if j, _ := worker.Status(ctx, m.ID); j.Status != delivery.StatusSent || !j.SentAt.Equal(at) {
		t.Fatalf("after the worker: %+v", j)
	}
}

func TestGraphRefusals(t *testing.T) {
	const base = "/users/alice@contoso.com/messages"
	tests := []struct {
		name       string
		fault      m365test.Fault
		wantStatus delivery.Status
		wantReason string
		retryAt    time.Duration
	}{
		{name: "missing Mail.Send fails with a readable reason", fault: m365test.Fault{Method: "POST", Path: base, Times: 1, Status: 403,
			Code: "ErrorAccessDenied", Message: "Access is denied."}, wantStatus: delivery.StatusFailed, wantReason: "Mail.Send"},
		{name: "throttled beyond the in-call wait is rescheduled at Retry-After", fault: m365test.Fault{Method: "POST", Path: base,
			Times: 1, Status: 429, RetryAfter: "120", Code: "ApplicationThrottled"}, wantStatus: delivery.StatusScheduled,
			wantReason: "slow down", retryAt: 120 * time.Second},
		{name: "unavailable beyond the in-call wait is rescheduled", fault: m365test.Fault{Method: "POST", Path: base, Times: 1,
			Status: 503, RetryAfter: "90"}, wantStatus: delivery.StatusScheduled, wantReason: "unavailable", retryAt: 90 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSending(t)
			ctx := context.Background()
			m := s.follow(t)
			s.graph.Fail(tc.fault)
			api := s.service("api")
			start := s.clock()
			alice := auth.Identity{Email: "alice@contoso.com", Token: s.userCaller(t, "alice@contoso.com").UserToken}
			j, err := api.Send(ctx, alice, m.ID, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if j.Status != tc.wantStatus || !strings.Contains(j.Reason, tc.wantReason) {
				t.Fatalf("job %+v, want %s with a reason naming %q", j, tc.wantStatus, tc.wantReason)
			}
			if tc.retryAt == 0 {
				return
			}
			if !j.DueAt.Equal(start.Add(tc.retryAt)) {
				t.Fatalf("retry due %s, want %s", j.DueAt, start.Add(tc.retryAt))
			}
			s.set(j.DueAt)
			if n, err := s.service("worker").DeliverDue(ctx); err != nil || n != 1 {
				t.Fatalf("retry: %d, %v", n, err)
			}
			if j, _ := api.Status(ctx, m.ID); j.Status != delivery.StatusSent {
				t.Fatalf("after the retry: %+v", j)
			}
			sent := 0
			for _, r := range s.graph.Requests() {
				if strings.HasSuffix(r.Path, "/send") {
					sent++
				}
			}
			if sent != 2 {
				t.Fatalf("%d sends, want one per render", sent)
			}
		})
	}
}
