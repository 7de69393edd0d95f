package sqlite

import (
	"context"
	"testing"
	"time"
)

func TestInboundEraserForgetsStreaksAndQueuedMail(t *testing.T) {
	ctx := context.Background()
	db := OpenTemp(t)
	write := func(q string, args ...any) {
		t.Helper()
		if _, err := db.write.ExecContext(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UnixMilli()
	write("INSERT INTO inbound_bounce_streaks (email, streak, last_at) VALUES (?, 3, ?), ('other@x.com', 1, ?)", "ann@fabrikam.com", now, now)
	write("INSERT INTO inbound_soft_bounces (event_id, email) VALUES ('e1', 'ann@fabrikam.com'), ('e2', 'other@x.com')")
	write(`INSERT INTO inbound_queue (id, kind, mailbox, raw, status, enqueued_at, due_at) VALUES
		('q1', 'RAW', 'rep@contoso.com', CAST(? AS BLOB), 'DONE', ?, ?),
		('q2', 'RAW', 'rep@contoso.com', CAST(? AS BLOB), 'PENDING', ?, ?)`,
		"From: Ann <Ann@Fabrikam.com>\r\nSubject: Re: offer\r\n\r\nyes", now, now, "From: other@x.com\r\n\r\nno", now, now)

	e := db.InboundEraser()
	data, err := e.RecipientData(ctx, "ann@fabrikam.com")
	if err != nil || len(data) != 2 {
		t.Fatalf("recipient data %+v, %v: want the streak and one queued mail", data, err)
	}
	counts, err := e.ForgetRecipient(ctx, "ann@fabrikam.com")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"bounce streaks": 1, "soft bounces": 1, "inbound mail": 1}
	for _, c := range counts {
		if want[c.What] != c.N {
			t.Errorf("%s: %d, want %d", c.What, c.N, want[c.What])
		}
	}
	if data, _ := e.RecipientData(ctx, "ann@fabrikam.com"); len(data) != 0 {
		t.Fatalf("after forgetting: %+v", data)
	}
	if data, _ := e.RecipientData(ctx, "other@x.com"); len(data) != 2 {
		t.Fatalf("another address was touched: %+v", data)
	}
}
