package delivery_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/engage-email/engage/delivery"
)

// A draft the salesperson deleted before it went out fails that send; sending the message again drafts
// the unsent render anew and sends each render exactly once, never the one already sent.
func TestSendAgainAfterADeletedDraft(t *testing.T) {
	throttled := &delivery.RetryError{After: time.Minute, Err: errors.New("429")}
	tests := []struct {
		name    string
		fail    []error // the first sends' answers: render 0's, then render 1's
		deleted int     // the render whose draft is deleted while the job waits for its retry
	}{
		{name: "first render throttled, its draft deleted", fail: []error{throttled}, deleted: 0},
		{name: "first render sent, second throttled and its draft deleted", fail: []error{nil, throttled}, deleted: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			x := &exchange{Outbox: e.outbox, failSend: tc.fail}
			api, worker := e.service("api", x), e.service("worker", x)
			m := e.follow(t, rep)
			j, err := api.Send(ctx, rep, m.ID, time.Time{})
			if err != nil || j.Status != delivery.StatusScheduled {
				t.Fatalf("send now: %+v, %v; want SCHEDULED for a retry", j, err)
			}
			deleted := draftOf(t, api, m.ID, tc.deleted)
			x.deleteDraft(deleted)
			e.clock.Set(j.DueAt)
			if _, err := worker.DeliverDue(ctx); err != nil {
				t.Fatal(err)
			}
			if j, _ = api.Status(ctx, m.ID); j.Status != delivery.StatusFailed || !strings.Contains(j.Reason, "deleted") {
				t.Fatalf("retry of a deleted draft: %+v, want FAILED saying the draft was deleted", j)
			}
			if j, err = api.Send(ctx, rep, m.ID, time.Time{}); err != nil || j.Status != delivery.StatusSent {
				t.Fatalf("send again: %+v, %v; want SENT", j, err)
			}
			if again := draftOf(t, api, m.ID, tc.deleted); again == deleted || again == "" {
				t.Fatalf("render %d still records the deleted draft %q (now %q)", tc.deleted, deleted, again)
			}
			perRender := map[string]int{}
			for _, mail := range e.sentMail(t, m) {
				perRender[mail.Headers[delivery.HeaderRender]]++
			}
			if len(perRender) != 2 || perRender["0"] != 1 || perRender["1"] != 1 {
				t.Fatalf("sent mails per render %v, want exactly one each", perRender)
			}
		})
	}
}

// draftOf is the draft id recorded for a render of message id.
func draftOf(t *testing.T, svc *delivery.Service, id string, render int) string {
	t.Helper()
	sends, err := svc.RenderSends(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sends {
		if s.Render == render {
			return s.DraftID
		}
	}
	t.Fatalf("render %d of %s has no record: %+v", render, id, sends)
	return ""
}
