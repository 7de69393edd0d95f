package delivery_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/engage-email/engage/delivery"
)

// A send that reached some recipients before it failed, or before it waits to retry the rest, has left:
// their follow-up reminders are due. One that sent nothing is still pending.
func TestSendStatesOfAPartialSend(t *testing.T) {
	tests := []struct {
		name    string
		fail    []error // the mailer's answers to each render's send
		pending bool
	}{
		{"nothing sent, waiting to retry", []error{errors.New("mailbox busy")}, true},
		{"one render sent before it failed", []error{nil, &delivery.PermanentError{Reason: "gone", Err: errors.New("gone")}}, false},
		{"one render sent, the rest waiting to retry", []error{nil, &delivery.RetryError{After: time.Minute, Err: errors.New("429")}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			x := &exchange{Outbox: e.outbox, failSend: tc.fail}
			svc := delivery.New(e.db, e.db, x, delivery.Options{Instance: "w", Now: e.clock.Now, MaxAttempts: 3})
			m := e.follow(t, rep)
			if _, err := svc.Send(ctx, rep, m.ID, time.Time{}); err != nil {
				t.Fatal(err)
			}
			_, pending, err := delivery.SendStates{Store: e.db}.SendPending(ctx, m.ID)
			if err != nil || pending != tc.pending {
				t.Fatalf("pending %v (%v), want %v", pending, err, tc.pending)
			}
		})
	}
}
