package delivery_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/engage-email/engage/delivery"
)

// OnSend hears of a message once, as its first render goes: a retry that sends the rest minutes later
// must not move the send time the first recipients' hits are judged from.
func TestOnSendAnnouncesTheFirstSendOnly(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	throttled := &delivery.RetryError{After: time.Minute, Err: errors.New("429")}
	x := &exchange{Outbox: e.outbox, failSend: []error{nil, throttled}}
	var calls []time.Time
	svc := delivery.New(e.db, e.db, x, delivery.Options{Instance: "w", Now: e.clock.Now, Lease: time.Minute,
		RetryBase: time.Minute, RetryMax: 10 * time.Minute, MaxAttempts: 3,
		OnSend: func(id string, at time.Time) { calls = append(calls, at) }})
	m := e.follow(t, rep)
	j, err := svc.Send(ctx, rep, m.ID, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Set(j.DueAt.Add(10 * time.Minute))
	if _, err := svc.DeliverDue(ctx); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 1 || !calls[0].Equal(t0) {
		t.Fatalf("OnSend heard %v, want the first send alone, at %v", calls, t0)
	}
}
