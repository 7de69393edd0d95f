package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/engage-email/engage/delivery"
	"github.com/engage-email/engage/followed"
)

func scheduledJob(id string, due time.Time) delivery.Job {
	return delivery.Job{MessageID: id, Owner: "rep@contoso.com", Status: delivery.StatusScheduled, ScheduledAt: due,
		DueAt: due, CreatedAt: t0}
}

func runDelivery(t *testing.T, open func(t *testing.T) Stores) {
	ctx := context.Background()

	t.Run("status transitions", func(t *testing.T) {
		st := open(t)
		s := st.Delivery
		mustCreate(t, st.Followed, message("m1", "rep@contoso.com", "Deal", t0, true, "a@x.com", "b@x.com"))
		due := t0.Add(time.Hour)
		if _, err := s.Job(ctx, "m1"); !errors.Is(err, followed.ErrNotFound) {
			t.Fatalf("job before any send: err %v, want ErrNotFound", err)
		}
		if err := s.CreateJob(ctx, scheduledJob("m1", due)); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateJob(ctx, scheduledJob("m1", due)); !errors.Is(err, delivery.ErrJobExists) {
			t.Fatalf("second job: err %v, want ErrJobExists", err)
		}
		later := due.Add(time.Hour)
		j, err := s.RescheduleJob(ctx, "m1", later, t0)
		if err != nil || !j.DueAt.Equal(later) || !j.ScheduledAt.Equal(later) {
			t.Fatalf("reschedule: %+v, %v", j, err)
		}
		if got, _ := s.Job(ctx, "m1"); !got.DueAt.Equal(later) || got.Status != delivery.StatusScheduled {
			t.Fatalf("after reschedule: %+v", got)
		}
		if _, err := s.CancelJob(ctx, "m1", t0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CancelJob(ctx, "m1", t0); !errors.Is(err, followed.ErrNotFound) {
			t.Fatalf("cancel twice: err %v, want ErrNotFound", err)
		}
		if err := s.CreateJob(ctx, scheduledJob("m1", due)); err != nil {
			t.Fatalf("schedule again after cancel: %v", err)
		}
		if js, err := s.ClaimDueJobs(ctx, "w1", due.Add(-time.Second), time.Minute, 10); err != nil || len(js) != 0 {
			t.Fatalf("claim before due: %v, %v", js, err)
		}
		js, err := s.ClaimDueJobs(ctx, "w1", due, time.Minute, 10)
		if err != nil || len(js) != 1 {
			t.Fatalf("claim when due: %v, %v", js, err)
		}
		if c := js[0]; c.Status != delivery.StatusSending || c.LeaseOwner != "w1" || c.Attempts != 1 || !c.LeaseUntil.Equal(due.Add(time.Minute)) {
			t.Fatalf("claimed job %+v", c)
		}
		if _, err := s.CancelJob(ctx, "m1", due); !errors.Is(err, delivery.ErrJobState) {
			t.Fatalf("cancel while sending: err %v, want ErrJobState", err)
		}
		if _, err := s.RescheduleJob(ctx, "m1", later, due); !errors.Is(err, delivery.ErrJobState) {
			t.Fatalf("reschedule while sending: err %v, want ErrJobState", err)
		}
		r0 := delivery.RenderSend{MessageID: "m1", Render: 0, DraftID: "d0", InternetMessageID: "<i0@x>", ConversationID: "c0"}
		if err := s.RecordDraft(ctx, "intruder", r0); !errors.Is(err, delivery.ErrLeaseLost) {
			t.Fatalf("record draft without the lease: err %v, want ErrLeaseLost", err)
		}
		if err := s.RecordDraft(ctx, "w1", r0); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkRenderSent(ctx, "w1", "m1", 0, due); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkRenderSent(ctx, "w1", "m1", 0, due); !errors.Is(err, delivery.ErrJobState) {
			t.Fatalf("mark sent twice: err %v, want ErrJobState", err)
		}
		r0.DraftID = "replaced"
		if err := s.RecordDraft(ctx, "w1", r0); err != nil {
			t.Fatal(err)
		}
		sends, err := s.RenderSends(ctx, "m1")
		want := []delivery.RenderSend{{MessageID: "m1", Render: 0, DraftID: "d0", InternetMessageID: "<i0@x>", ConversationID: "c0", SentAt: due}}
		if err != nil || !reflect.DeepEqual(sends, want) {
			t.Fatalf("render sends (a sent render's draft never changes):\n got %+v, %v\nwant %+v", sends, err, want)
		}
		// A failure settles the job; a new send replaces it and keeps what was sent.
		failed := js[0]
		failed.Status, failed.Reason = delivery.StatusFailed, "Mail.Send is not granted."
		if err := s.FinishJob(ctx, "intruder", failed); !errors.Is(err, delivery.ErrLeaseLost) {
			t.Fatalf("finish without the lease: err %v, want ErrLeaseLost", err)
		}
		if err := s.FinishJob(ctx, "w1", failed); err != nil {
			t.Fatal(err)
		}
		if err := s.FinishJob(ctx, "w1", failed); !errors.Is(err, delivery.ErrLeaseLost) {
			t.Fatalf("finish twice: err %v, want ErrLeaseLost", err)
		}
		if got, _ := s.Job(ctx, "m1"); got.Status != delivery.StatusFailed || got.Reason != failed.Reason || got.LeaseOwner != "" {
			t.Fatalf("failed job %+v", got)
		}
		if _, err := s.CancelJob(ctx, "m1", due); !errors.Is(err, delivery.ErrJobState) {
			t.Fatalf("cancel a failed job: err %v, want ErrJobState", err)
		}
		now := delivery.Job{MessageID: "m1", Owner: "rep@contoso.com", Status: delivery.StatusSending, DueAt: due, Attempts: 1,
			LeaseOwner: "api", LeaseUntil: due.Add(time.Minute), CreatedAt: due}
		if err := s.CreateJob(ctx, now); err != nil {
			t.Fatalf("send again after failure: %v", err)
		}
		if sends, _ := s.RenderSends(ctx, "m1"); len(sends) != 1 || sends[0].SentAt.IsZero() {
			t.Fatalf("render sends lost on resend: %+v", sends)
		}
		sent := now
		sent.Status, sent.SentAt = delivery.StatusSent, due.Add(time.Second)
		if err := s.FinishJob(ctx, "api", sent); err != nil {
			t.Fatal(err)
		}
		got, err := s.Job(ctx, "m1")
		if err != nil || got.Status != delivery.StatusSent || !got.SentAt.Equal(sent.SentAt) || got.Attempts != 1 {
			t.Fatalf("sent job %+v, %v", got, err)
		}
		if err := s.CreateJob(ctx, now); !errors.Is(err, delivery.ErrJobExists) {
			t.Fatalf("send a sent message again: err %v, want ErrJobExists", err)
		}
		if js, _ := s.ClaimDueJobs(ctx, "w2", due.Add(time.Hour), time.Minute, 10); len(js) != 0 {
			t.Fatalf("sent job claimed again: %+v", js)
		}
	})

	t.Run("empty draft ids clear an unsent render's draft, not a sent one's", func(t *testing.T) {
		st := open(t)
		s := st.Delivery
		mustCreate(t, st.Followed, message("m1", "rep@contoso.com", "Deal", t0, true, "a@x.com", "b@x.com"))
		if err := s.CreateJob(ctx, scheduledJob("m1", t0)); err != nil {
			t.Fatal(err)
		}
		if js, err := s.ClaimDueJobs(ctx, "w1", t0, time.Minute, 1); err != nil || len(js) != 1 {
			t.Fatalf("claim: %v, %v", js, err)
		}
		sent := delivery.RenderSend{MessageID: "m1", Render: 0, DraftID: "d0", InternetMessageID: "<i0@x>", ConversationID: "c0"}
		deleted := delivery.RenderSend{MessageID: "m1", Render: 1, DraftID: "d1", InternetMessageID: "<i1@x>", ConversationID: "c1"}
		for _, r := range []delivery.RenderSend{sent, deleted} {
			if err := s.RecordDraft(ctx, "w1", r); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.MarkRenderSent(ctx, "w1", "m1", 0, t0); err != nil {
			t.Fatal(err)
		}
		for _, render := range []int{0, 1} {
			if err := s.RecordDraft(ctx, "w1", delivery.RenderSend{MessageID: "m1", Render: render}); err != nil {
				t.Fatalf("clear render %d: %v", render, err)
			}
		}
		sent.SentAt = t0
		want := []delivery.RenderSend{sent, {MessageID: "m1", Render: 1}}
		if got, err := s.RenderSends(ctx, "m1"); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("render sends after clearing:\n got %+v, %v\nwant %+v", got, err, want)
		}
	})

	t.Run("retry goes back to scheduled and is claimed when due", func(t *testing.T) {
		st := open(t)
		s := st.Delivery
		mustCreate(t, st.Followed, message("m1", "rep@contoso.com", "Deal", t0, false, "a@x.com"))
		if err := s.CreateJob(ctx, scheduledJob("m1", t0)); err != nil {
			t.Fatal(err)
		}
		js, _ := s.ClaimDueJobs(ctx, "w1", t0, time.Minute, 1)
		if len(js) != 1 {
			t.Fatalf("claimed %d", len(js))
		}
		retry := js[0]
		retry.Status, retry.DueAt, retry.Reason = delivery.StatusScheduled, t0.Add(2*time.Minute), "throttled"
		if err := s.FinishJob(ctx, "w1", retry); err != nil {
			t.Fatal(err)
		}
		if js, _ := s.ClaimDueJobs(ctx, "w2", t0.Add(time.Minute), time.Minute, 1); len(js) != 0 {
			t.Fatalf("claimed before the retry time: %+v", js)
		}
		js, _ = s.ClaimDueJobs(ctx, "w2", t0.Add(2*time.Minute), time.Minute, 1)
		if len(js) != 1 || js[0].Attempts != 2 || js[0].Reason != "throttled" {
			t.Fatalf("retry claim %+v", js)
		}
	})

	t.Run("lease expiry hands a job to another instance", func(t *testing.T) {
		st := open(t)
		s := st.Delivery
		mustCreate(t, st.Followed, message("m1", "rep@contoso.com", "Deal", t0, false, "a@x.com"))
		if err := s.CreateJob(ctx, scheduledJob("m1", t0)); err != nil {
			t.Fatal(err)
		}
		if js, _ := s.ClaimDueJobs(ctx, "dead", t0, time.Minute, 10); len(js) != 1 {
			t.Fatal("first claim failed")
		}
		if js, _ := s.ClaimDueJobs(ctx, "rescuer", t0.Add(59*time.Second), time.Minute, 10); len(js) != 0 {
			t.Fatalf("claimed while the lease runs: %+v", js)
		}
		js, err := s.ClaimDueJobs(ctx, "rescuer", t0.Add(time.Minute), time.Minute, 10)
		if err != nil || len(js) != 1 || js[0].LeaseOwner != "rescuer" || js[0].Attempts != 2 {
			t.Fatalf("claim after expiry: %+v, %v", js, err)
		}
		r := delivery.RenderSend{MessageID: "m1", Render: 0, DraftID: "d"}
		if err := s.RecordDraft(ctx, "dead", r); !errors.Is(err, delivery.ErrLeaseLost) {
			t.Fatalf("expired holder records a draft: err %v, want ErrLeaseLost", err)
		}
		done := js[0]
		done.Status, done.SentAt = delivery.StatusSent, t0.Add(time.Minute)
		if err := s.FinishJob(ctx, "dead", done); !errors.Is(err, delivery.ErrLeaseLost) {
			t.Fatalf("expired holder finishes: err %v, want ErrLeaseLost", err)
		}
		if err := s.FinishJob(ctx, "rescuer", done); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("concurrent claimers get each job exactly once", func(t *testing.T) {
		st := open(t)
		s := st.Delivery
		const jobs, claimers = 120, 8
		for i := range jobs {
			id := fmt.Sprintf("m%03d", i)
			mustCreate(t, st.Followed, message(id, "rep@contoso.com", "Deal", t0, false, "a@x.com"))
			if err := s.CreateJob(ctx, scheduledJob(id, t0.Add(time.Duration(i)*time.Millisecond))); err != nil {
				t.Fatal(err)
			}
		}
		var mu sync.Mutex
		got := map[string][]string{}
		var wg sync.WaitGroup
		for c := range claimers {
			wg.Go(func() {
				me := fmt.Sprintf("w%d", c)
				for {
					js, err := s.ClaimDueJobs(ctx, me, t0.Add(time.Second), time.Hour, 5)
					if err != nil {
						t.Error(err)
						return
					}
					if len(js) == 0 {
						return
					}
					mu.Lock()
					for _, j := range js {
						got[j.MessageID] = append(got[j.MessageID], me)
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(got) != jobs {
			t.Fatalf("%d jobs claimed, want %d", len(got), jobs)
		}
		for id, by := range got {
			if len(by) != 1 {
				t.Errorf("job %s claimed by %v", id, by)
			}
		}
	})

	t.Run("outbox", func(t *testing.T) {
		s := open(t).Outbox
		e := delivery.OutboxEntry{ID: "o1", From: "rep@contoso.com", To: []delivery.Address{{Email: "a@x.com", Name: "Ann"}},
			Bcc: []delivery.Address{{Email: "b@x.com"}}, Subject: "Deal", HTML: "<p>hi</p>",
			Headers: map[string]string{delivery.HeaderMessageID: "m1"}, InternetMessageID: "<o1@contoso.com>",
			ConversationID: "conv-o1", CreatedAt: t0,
			Files: []delivery.OutboxFile{{AttachmentID: "f1", Name: "terms.txt", ContentType: "text/plain; charset=utf-8", Size: 27}}}
		if err := s.AddOutboxDraft(ctx, e); err != nil {
			t.Fatal(err)
		}
		other := e
		other.ID, other.From, other.CreatedAt, other.Files = "o2", "other@contoso.com", t0.Add(time.Second), nil
		if err := s.AddOutboxDraft(ctx, other); err != nil {
			t.Fatal(err)
		}
		if es, err := s.OutboxEntries(ctx, delivery.OutboxQuery{Limit: 10}); err != nil || len(es) != 0 {
			t.Fatalf("drafts listed as sent: %+v, %v", es, err)
		}
		if err := s.MarkOutboxSent(ctx, "o1", t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkOutboxSent(ctx, "o1", t0.Add(time.Minute)); !errors.Is(err, delivery.ErrJobState) {
			t.Fatalf("send twice: err %v, want ErrJobState", err)
		}
		if err := s.MarkOutboxSent(ctx, "nope", t0); !errors.Is(err, followed.ErrNotFound) {
			t.Fatalf("send unknown: err %v, want ErrNotFound", err)
		}
		if err := s.MarkOutboxSent(ctx, "o2", t0.Add(2*time.Minute)); err != nil {
			t.Fatal(err)
		}
		got, err := s.OutboxEntry(ctx, "o1")
		e.SentAt = t0.Add(time.Minute)
		if err != nil || !reflect.DeepEqual(got, e) {
			t.Fatalf("entry:\n got %+v, %v\nwant %+v", got, err, e)
		}
		es, err := s.OutboxEntries(ctx, delivery.OutboxQuery{Limit: 10})
		if err != nil || len(es) != 2 || es[0].ID != "o2" || es[1].ID != "o1" {
			t.Fatalf("newest first: %+v, %v", es, err)
		}
		es, err = s.OutboxEntries(ctx, delivery.OutboxQuery{From: "rep@contoso.com", Limit: 10})
		if err != nil || len(es) != 1 || es[0].ID != "o1" {
			t.Fatalf("one sender: %+v, %v", es, err)
		}
		if _, err := s.OutboxEntry(ctx, "nope"); !errors.Is(err, followed.ErrNotFound) {
			t.Fatalf("unknown entry: err %v, want ErrNotFound", err)
		}
	})
}
