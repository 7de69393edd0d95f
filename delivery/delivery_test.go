package delivery_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/engage-email/engage/auth"
	"github.com/engage-email/engage/delivery"
	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/store/sqlite"
)

var (
	rep   = auth.Identity{Email: "rep@contoso.com", Token: "user-token"}
	other = auth.Identity{Email: "other@contoso.com", Admin: true}
	t0    = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
)

// clock is a settable time source, so schedules fall due without waiting.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }
func (c *clock) Set(t time.Time)     { c.mu.Lock(); c.now = t; c.mu.Unlock() }

type env struct {
	db       *sqlite.DB
	followed *followed.Service
	outbox   *delivery.Outbox
	clock    *clock
}

func newEnv(t *testing.T) *env {
	t.Helper()
	db := sqlite.OpenTemp(t)
	keys, err := followed.LoadOrCreateKeyRing(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	svc, err := followed.NewService(db, keys, "https://engage.example.com", followed.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{now: t0}
	return &env{db: db, followed: svc, outbox: delivery.NewOutbox(db, c.Now), clock: c}
}

// service builds a delivery service (an instance) over mailer, or over the local outbox when nil.
func (e *env) service(instance string, mailer delivery.Mailer) *delivery.Service {
	if mailer == nil {
		mailer = e.outbox
	}
	return delivery.New(e.db, e.db, mailer, delivery.Options{Instance: instance, Now: e.clock.Now, Lease: time.Minute,
		RetryBase: time.Minute, RetryMax: 10 * time.Minute, MaxAttempts: 3})
}

// follow stores an individual message to ann (To) and bob (Cc) owned by who.
func (e *env) follow(t *testing.T, who auth.Identity) followed.Message {
	t.Helper()
	m, err := e.followed.Follow(context.Background(), who, followed.FollowInput{Subject: "Proposal",
		HTML: `<p>Hi, see <a href="https://example.com/offer">the offer</a></p>`, Individual: true, Follow: true,
		Recipients: []followed.Recipient{{Email: "ann@fabrikam.com", Name: "Ann"}, {Email: "bob@fabrikam.com", Kind: followed.KindCc}}})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// sentMail is the local outbox's sent mail of message id, checked to be one per render.
func (e *env) sentMail(t *testing.T, m followed.Message) []delivery.OutboxEntry {
	t.Helper()
	all, err := e.outbox.Entries(context.Background(), "", 500)
	if err != nil {
		t.Fatal(err)
	}
	var out []delivery.OutboxEntry
	for _, x := range all {
		if x.MessageID() == m.ID {
			out = append(out, x)
		}
	}
	return out
}

func TestSendNowThroughTheLocalOutbox(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	m := e.follow(t, rep)
	svc := e.service("api", nil)
	if j, _ := svc.Status(ctx, m.ID); j.Status != delivery.StatusDraft {
		t.Fatalf("status before sending = %s, want DRAFT", j.Status)
	}
	j, err := svc.Send(ctx, rep, m.ID, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != delivery.StatusSent || !j.SentAt.Equal(t0) {
		t.Fatalf("job after send now = %+v", j)
	}
	mail := e.sentMail(t, m)
	if len(mail) != 2 {
		t.Fatalf("outbox holds %d mails of the message, want one per render (2)", len(mail))
	}
	byRender := map[string]delivery.OutboxEntry{}
	for _, x := range mail {
		byRender[x.Headers[delivery.HeaderRender]] = x
	}
	ann, bob := byRender["0"], byRender["1"]
	if len(ann.To) != 1 || ann.To[0] != (delivery.Address{Email: "ann@fabrikam.com", Name: "Ann"}) || len(ann.Cc) != 0 {
		t.Errorf("ann's mail addressed to %+v / %+v", ann.To, ann.Cc)
	}
	if len(bob.Cc) != 1 || bob.Cc[0].Email != "bob@fabrikam.com" || len(bob.To) != 0 {
		t.Errorf("bob's mail addressed to %+v / %+v (he was CC)", bob.To, bob.Cc)
	}
	if ann.HTML != m.Renders[0].HTML || bob.HTML != m.Renders[1].HTML || ann.From != rep.Email || ann.Subject != "Proposal" {
		t.Errorf("mail is not the tracked render: %+v", ann)
	}
	sends, err := svc.RenderSends(ctx, m.ID)
	if err != nil || len(sends) != 2 {
		t.Fatalf("render sends %+v, %v", sends, err)
	}
	for _, s := range sends {
		x := byRender[fmt.Sprint(s.Render)]
		if s.DraftID != x.ID || s.InternetMessageID != x.InternetMessageID || s.ConversationID != x.ConversationID || s.SentAt.IsZero() {
			t.Errorf("render %d recorded %+v, outbox has %s %s %s", s.Render, s, x.ID, x.InternetMessageID, x.ConversationID)
		}
	}
	if _, err := svc.Send(ctx, rep, m.ID, time.Time{}); !errors.Is(err, followed.ErrBadInput) || !strings.Contains(err.Error(), "already sent") {
		t.Fatalf("sending twice: err %v, want a clear bad-input error", err)
	}
	if n := len(e.sentMail(t, m)); n != 2 {
		t.Fatalf("after sending twice the outbox holds %d mails, want 2", n)
	}
}

func TestSendRefusals(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	svc := e.service("api", nil)
	scheduled := e.follow(t, rep)
	if _, err := svc.Send(ctx, rep, scheduled.ID, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	draft := e.follow(t, rep)
	tests := []struct {
		name string
		call func() error
		want error
		text string
	}{
		{"someone else's message", func() error { _, err := svc.Send(ctx, other, draft.ID, time.Time{}); return err }, followed.ErrNotFound, ""},
		{"unknown message", func() error { _, err := svc.Send(ctx, rep, "nope", time.Time{}); return err }, followed.ErrNotFound, ""},
		{"a time in the past", func() error { _, err := svc.Send(ctx, rep, draft.ID, t0.Add(-time.Minute)); return err }, followed.ErrBadInput, "not in the future"},
		{"now is not later", func() error { _, err := svc.Send(ctx, rep, draft.ID, t0); return err }, followed.ErrBadInput, "not in the future"},
		{"years ahead", func() error { _, err := svc.Send(ctx, rep, draft.ID, t0.AddDate(2, 0, 0)); return err }, followed.ErrBadInput, "more than a year ahead"},
		{"scheduling twice", func() error { _, err := svc.Send(ctx, rep, scheduled.ID, t0.Add(2*time.Hour)); return err }, followed.ErrBadInput, "already scheduled"},
		{"send now while scheduled", func() error { _, err := svc.Send(ctx, rep, scheduled.ID, time.Time{}); return err }, followed.ErrBadInput, "already scheduled"},
		{"cancel a draft", func() error { _, err := svc.Cancel(ctx, rep, draft.ID); return err }, followed.ErrBadInput, "not scheduled"},
		{"cancel someone else's", func() error { _, err := svc.Cancel(ctx, other, scheduled.ID); return err }, followed.ErrNotFound, ""},
		{"reschedule into the past", func() error { _, err := svc.Reschedule(ctx, rep, scheduled.ID, t0.Add(-time.Hour)); return err }, followed.ErrBadInput, "not in the future"},
		{"reschedule to the year 9999", func() error {
			_, err := svc.Reschedule(ctx, rep, scheduled.ID, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC))
			return err
		}, followed.ErrBadInput, "more than a year ahead"},
		{"reschedule a draft", func() error { _, err := svc.Reschedule(ctx, rep, draft.ID, t0.Add(time.Hour)); return err }, followed.ErrBadInput, "not scheduled"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("err %v, want %v containing %q", err, tc.want, tc.text)
			}
		})
	}
	if n := len(e.sentMail(t, draft)) + len(e.sentMail(t, scheduled)); n != 0 {
		t.Fatalf("refused calls sent %d mails", n)
	}
}

func TestScheduledSendCancelAndReschedule(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	api, worker := e.service("api", nil), e.service("worker", nil)
	m := e.follow(t, rep)
	at := t0.Add(time.Hour)
	j, err := api.Send(ctx, rep, m.ID, at)
	if err != nil || j.Status != delivery.StatusScheduled || !j.ScheduledAt.Equal(at) {
		t.Fatalf("schedule: %+v, %v", j, err)
	}
	if n, err := worker.DeliverDue(ctx); err != nil || n != 0 {
		t.Fatalf("before the time: delivered %d, %v", n, err)
	}
	if _, err := api.Cancel(ctx, rep, m.ID); err != nil {
		t.Fatal(err)
	}
	if j, _ := api.Status(ctx, m.ID); j.Status != delivery.StatusDraft {
		t.Fatalf("after cancel: %s, want DRAFT", j.Status)
	}
	if _, err := api.Send(ctx, rep, m.ID, at); err != nil {
		t.Fatalf("schedule again after cancel: %v", err)
	}
	later := at.Add(time.Hour)
	if j, err := api.Reschedule(ctx, rep, m.ID, later); err != nil || !j.DueAt.Equal(later) {
		t.Fatalf("reschedule: %+v, %v", j, err)
	}
	e.clock.Add(time.Hour)
	if n, _ := worker.DeliverDue(ctx); n != 0 || len(e.sentMail(t, m)) != 0 {
		t.Fatal("sent at the old time after rescheduling")
	}
	e.clock.Add(time.Hour)
	if n, err := worker.DeliverDue(ctx); err != nil || n != 1 {
		t.Fatalf("at the new time: delivered %d, %v", n, err)
	}
	j, _ = api.Status(ctx, m.ID)
	if j.Status != delivery.StatusSent || !j.SentAt.Equal(later) || !j.ScheduledAt.Equal(later) {
		t.Fatalf("after the worker: %+v", j)
	}
	if len(e.sentMail(t, m)) != 2 {
		t.Fatal("not one mail per render")
	}
	if _, err := api.Cancel(ctx, rep, m.ID); !errors.Is(err, followed.ErrBadInput) || !strings.Contains(err.Error(), "already sent") {
		t.Fatalf("cancel after sending: %v", err)
	}
}

// exchange stands in for Microsoft's cloud in front of the local outbox: it can refuse calls, act on a
// send and then lose the answer, as a dropped connection does, or lose drafts the salesperson deleted.
type exchange struct {
	*delivery.Outbox
	mu        sync.Mutex
	failSend  []error         // errors returned by the next sends, in order
	loseSends int             // the next sends go through, but their answer is lost
	deleted   map[string]bool // drafts deleted from the mailbox
}

// deleteDraft removes an unsent draft from the mailbox, as the salesperson can.
func (x *exchange) deleteDraft(id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.deleted == nil {
		x.deleted = map[string]bool{}
	}
	x.deleted[id] = true
}

func (x *exchange) gone(id string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.deleted[id]
}

func (x *exchange) DraftExists(ctx context.Context, from delivery.Sender, id string) (bool, error) {
	if x.gone(id) {
		return false, fmt.Errorf("exchange: draft %s: %w", id, delivery.ErrDraftGone)
	}
	return x.Outbox.DraftExists(ctx, from, id)
}

func (x *exchange) SendDraft(ctx context.Context, from delivery.Sender, id string) error {
	if x.gone(id) {
		return &delivery.PermanentError{Reason: "No such message.", Err: errors.New("404")}
	}
	x.mu.Lock()
	var fail error
	lose := false
	if len(x.failSend) > 0 {
		fail, x.failSend = x.failSend[0], x.failSend[1:]
	} else if x.loseSends > 0 {
		x.loseSends--
		lose = true
	}
	x.mu.Unlock()
	if fail != nil {
		return fail
	}
	if err := x.Outbox.SendDraft(ctx, from, id); err != nil {
		return err
	}
	if lose {
		return errors.New("connection reset by peer")
	}
	return nil
}

func TestFailuresAndRetries(t *testing.T) {
	permanent := &delivery.PermanentError{Reason: "Engage has not been granted Mail.Send.", Err: errors.New("403")}
	throttled := &delivery.RetryError{After: 3 * time.Minute, Err: errors.New("429")}
	tests := []struct {
		name       string
		fail       []error
		lose       int
		tries      int // worker runs after the send-now, each at the job's due time
		wantStatus delivery.Status
		wantReason string
		wantDue    time.Duration // after t0, for a job left scheduled
	}{
		{name: "permanent refusal fails at once", fail: []error{permanent}, wantStatus: delivery.StatusFailed, wantReason: permanent.Reason},
		{name: "throttled honours Retry-After", fail: []error{throttled}, wantStatus: delivery.StatusScheduled,
			wantReason: "slow down", wantDue: 3 * time.Minute},
		{name: "network failure backs off", fail: []error{errors.New("dial tcp: timeout")}, wantStatus: delivery.StatusScheduled,
			wantReason: "could not be reached", wantDue: time.Minute},
		{name: "retried until sent", fail: []error{throttled, errors.New("reset")}, tries: 2, wantStatus: delivery.StatusSent},
		{name: "gives up after MaxAttempts", fail: []error{throttled, throttled, throttled}, tries: 2,
			wantStatus: delivery.StatusFailed, wantReason: "Gave up after 3 tries"},
		{name: "a send whose answer was lost is not sent again", lose: 2, tries: 2, wantStatus: delivery.StatusSent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			x := &exchange{Outbox: e.outbox, failSend: tc.fail, loseSends: tc.lose}
			api, worker := e.service("api", x), e.service("worker", x)
			m := e.follow(t, rep)
			j, err := api.Send(ctx, rep, m.ID, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			for range tc.tries {
				e.clock.Set(j.DueAt)
				if _, err := worker.DeliverDue(ctx); err != nil {
					t.Fatal(err)
				}
				if j, err = api.Status(ctx, m.ID); err != nil {
					t.Fatal(err)
				}
			}
			if j.Status != tc.wantStatus || !strings.Contains(j.Reason, tc.wantReason) {
				t.Fatalf("job %+v, want %s with reason containing %q", j, tc.wantStatus, tc.wantReason)
			}
			if tc.wantDue != 0 && !j.DueAt.Equal(t0.Add(tc.wantDue)) {
				t.Errorf("due at %s, want %s", j.DueAt, t0.Add(tc.wantDue))
			}
			wantMail := 0
			if tc.wantStatus == delivery.StatusSent {
				wantMail = 2
			}
			if n := len(e.sentMail(t, m)); n != wantMail {
				t.Fatalf("outbox holds %d sent mails, want %d (exactly one per render)", n, wantMail)
			}
			drafts := map[string]bool{}
			sends, _ := api.RenderSends(ctx, m.ID)
			for _, s := range sends {
				drafts[s.DraftID] = true
			}
			if len(sends) > 2 || len(drafts) != len(sends) {
				t.Fatalf("render sends %+v: a render was drafted twice", sends)
			}
		})
	}
}

// A worker that died after saving a draft (and one that died after sending it) leaves a SENDING job
// with a recorded draft; once the lease runs out another instance checks the draft and sends at most once.
func TestResumeAfterACrashedHolder(t *testing.T) {
	for _, sentBeforeCrash := range []bool{false, true} {
		t.Run(fmt.Sprintf("sent before crash %v", sentBeforeCrash), func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			m := e.follow(t, rep)
			if _, err := e.service("api", nil).Send(ctx, rep, m.ID, t0.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			e.clock.Add(time.Minute)
			// The dead instance claimed the job and saved render 0's draft (and maybe sent it).
			js, err := e.db.ClaimDueJobs(ctx, "dead", e.clock.Now(), time.Minute, 10)
			if err != nil || len(js) != 1 {
				t.Fatalf("claim: %v, %v", js, err)
			}
			from := delivery.Sender{Mailbox: rep.Email}
			ref, err := e.outbox.CreateDraft(ctx, from, delivery.Draft{Subject: m.Subject, HTML: m.Renders[0].HTML,
				To: []delivery.Address{{Email: "ann@fabrikam.com"}}, Headers: map[string]string{delivery.HeaderMessageID: m.ID}})
			if err != nil {
				t.Fatal(err)
			}
			if err := e.db.RecordDraft(ctx, "dead", delivery.RenderSend{MessageID: m.ID, Render: 0, DraftID: ref.ID}); err != nil {
				t.Fatal(err)
			}
			if sentBeforeCrash {
				if err := e.outbox.SendDraft(ctx, from, ref.ID); err != nil {
					t.Fatal(err)
				}
			}
			rescuer := e.service("rescuer", nil)
			if n, _ := rescuer.DeliverDue(ctx); n != 0 {
				t.Fatal("rescued while the dead instance's lease ran")
			}
			if j, _ := rescuer.Status(ctx, m.ID); j.Status != delivery.StatusSending {
				t.Fatalf("status while leased: %s, want SENDING", j.Status)
			}
			e.clock.Add(time.Minute)
			if n, err := rescuer.DeliverDue(ctx); err != nil || n != 1 {
				t.Fatalf("rescue: %d, %v", n, err)
			}
			j, _ := rescuer.Status(ctx, m.ID)
			if j.Status != delivery.StatusSent || j.Attempts != 2 {
				t.Fatalf("rescued job %+v", j)
			}
			mail := e.sentMail(t, m)
			if len(mail) != 2 {
				t.Fatalf("%d mails sent, want one per render (2)", len(mail))
			}
			if mail[0].ID != ref.ID && mail[1].ID != ref.ID {
				t.Fatal("the saved draft was not the one sent: render 0 was drafted again")
			}
		})
	}
}
