package inbound_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/engage-email/engage/consent"
	"github.com/engage-email/engage/delivery"
	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/inbound"
	"github.com/engage-email/engage/store/sqlite"
)

const rep = "rep@contoso.com"

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.now = c.now.Add(d) }

// sent stores message m1 from rep to the given recipients (one render each) as sent with internet ids
// <sent-N@contoso.com>.
func sent(t *testing.T, db *sqlite.DB, at time.Time, emails ...string) {
	t.Helper()
	ctx := context.Background()
	m := followed.Message{ID: "m1", Owner: rep, Subject: "Offer", HTML: "<p>x</p>", Individual: true, Following: true,
		CreatedAt: at, Warnings: []string{}}
	for i, e := range emails {
		m.Recipients = append(m.Recipients, followed.Recipient{Email: e, Kind: followed.KindTo})
		m.Renders = append(m.Renders, followed.Render{Index: i, Recipient: i, Targets: []int{i}, HTML: "x", Tracked: true})
	}
	if err := db.CreateMessage(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateJob(ctx, delivery.Job{MessageID: "m1", Owner: rep, Status: delivery.StatusScheduled, DueAt: at, CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	js, err := db.ClaimDueJobs(ctx, "w", at, time.Minute, 1)
	if err != nil || len(js) != 1 {
		t.Fatal(js, err)
	}
	for i := range emails {
		if err := db.RecordDraft(ctx, "w", delivery.RenderSend{MessageID: "m1", Render: i, DraftID: "d",
			InternetMessageID: "<sent-" + string(rune('0'+i)) + "@contoso.com>", ConversationID: "conv"}); err != nil {
			t.Fatal(err)
		}
	}
	js[0].Status, js[0].SentAt = delivery.StatusSent, at
	if err := db.FinishJob(ctx, "w", js[0]); err != nil {
		t.Fatal(err)
	}
}

func newProcessor(t *testing.T, db *sqlite.DB, clk *clock, instance string) *inbound.Processor {
	t.Helper()
	consents, err := consent.NewService(context.Background(), db, consent.Options{Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return inbound.NewProcessor(db, db, consents, nil, inbound.Options{Now: clk.Now, Instance: instance, Lease: time.Minute})
}

func replyMail(id, from, inReplyTo string) []byte {
	return []byte("From: " + from + "\r\nTo: " + rep + "\r\nSubject: Re: Offer\r\nDate: Mon, 02 Nov 2026 10:00:00 +0000\r\nMessage-ID: <" + id + "@fabrikam.com>\r\n" +
		"In-Reply-To: " + inReplyTo + "\r\n\r\nYes please.\r\n")
}

func counters(t *testing.T, db *sqlite.DB) (followed.Counters, []followed.Event) {
	t.Helper()
	m, err := db.Message(context.Background(), "m1")
	if err != nil {
		t.Fatal(err)
	}
	evs, err := db.Events(context.Background(), followed.EventQuery{MessageID: "m1", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return m.Counters, evs
}

// TestCrashAfterQueueingLosesNothing: an item queued (as before Graph's 202) by a process that stops
// before processing, or that dies holding it, is processed exactly once by the next one on the store.
func TestCrashAfterQueueingLosesNothing(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "engage.db")
	clk := &clock{now: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)}
	db, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sent(t, db, clk.Now(), "ann@fabrikam.com", "bob@fabrikam.com")
	first := newProcessor(t, db, clk, "first")
	if _, err := first.SubmitRaw(ctx, rep, replyMail("r1", "ann@fabrikam.com", "<sent-0@contoso.com>")); err != nil {
		t.Fatal(err)
	}
	// A second item the first process claimed and died holding.
	if _, err := first.SubmitRaw(ctx, rep, replyMail("r2", "bob@fabrikam.com", "<sent-1@contoso.com>")); err != nil {
		t.Fatal(err)
	}
	if got, err := db.ClaimInbound(ctx, "first", clk.Now(), time.Minute, 1); err != nil || len(got) != 1 {
		t.Fatalf("claim: %v %v", got, err)
	}
	db.Close() // the process stops here

	db, err = sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	second := newProcessor(t, db, clk, "second")
	if n, err := second.Drain(ctx); err != nil || n != 1 {
		t.Fatalf("drain while the dead holder's lease runs: %d %v, want the free item only", n, err)
	}
	clk.Add(2 * time.Minute)
	if n, err := second.Drain(ctx); err != nil || n != 1 {
		t.Fatalf("drain after the lease ran out: %d %v", n, err)
	}
	// The same mail submitted again (a new queue item) is one reply still: its event id is its own.
	if _, err := second.SubmitRaw(ctx, rep, replyMail("r1", "ann@fabrikam.com", "<sent-0@contoso.com>")); err != nil {
		t.Fatal(err)
	}
	if _, err := second.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	c, evs := counters(t, db)
	if c.Replies != 2 || len(evs) != 2 {
		t.Fatalf("replies %d, events %+v; want each reply once", c.Replies, evs)
	}
	if n, _ := db.InboundPending(ctx); n != 0 {
		t.Fatalf("%d items left in the queue", n)
	}
}

func TestProcessingEffects(t *testing.T) {
	ctx := context.Background()
	dsn := func(id, status string) []byte {
		return []byte("From: MAILER-DAEMON@contoso.com\r\nTo: " + rep + "\r\nSubject: Undelivered Mail Returned to Sender\r\n" +
			"Message-ID: <" + id + "@contoso.com>\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n" +
			"--b\r\nContent-Type: text/plain\r\n\r\nFailed.\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; contoso.com\r\n\r\n" +
			"Final-Recipient: rfc822; ann@fabrikam.com\r\nAction: failed\r\nStatus: " + status + "\r\n\r\n" +
			"--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <sent-0@contoso.com>\r\n\r\n--b--\r\n")
	}
	ooo := []byte("From: ann@fabrikam.com\r\nTo: " + rep + "\r\nSubject: Automatic reply: Offer\r\nAuto-Submitted: auto-replied\r\n" +
		"Message-ID: <ooo@fabrikam.com>\r\nIn-Reply-To: <sent-0@contoso.com>\r\n\r\nAway.\r\n")
	tests := []struct {
		name       string
		mails      [][]byte
		mailbox    string
		wantKinds  []followed.EventKind
		replies    int
		suppressed bool
	}{
		{"a reply counts", [][]byte{replyMail("a", "ann@fabrikam.com", "<sent-0@contoso.com>")}, rep, []followed.EventKind{followed.Replied}, 1, false},
		{"an out-of-office does not", [][]byte{ooo}, rep, []followed.EventKind{followed.AutoReplied}, 0, false},
		{"a hard bounce suppresses", [][]byte{dsn("h", "5.1.1")}, rep, []followed.EventKind{followed.Bounced}, 0, true},
		{"four soft bounces do not", [][]byte{dsn("s1", "5.2.2"), dsn("s2", "5.2.2"), dsn("s3", "5.2.2"), dsn("s4", "5.2.2")}, rep,
			[]followed.EventKind{followed.Bounced, followed.Bounced, followed.Bounced, followed.Bounced}, 0, false},
		{"five soft bounces do", [][]byte{dsn("s1", "5.2.2"), dsn("s2", "5.2.2"), dsn("s3", "5.2.2"), dsn("s4", "5.2.2"), dsn("s5", "5.2.2")}, rep,
			[]followed.EventKind{followed.Bounced, followed.Bounced, followed.Bounced, followed.Bounced, followed.Bounced}, 0, true},
		{"a reply between soft bounces ends the streak", [][]byte{dsn("s1", "5.2.2"), dsn("s2", "5.2.2"), dsn("s3", "5.2.2"),
			replyMail("a", "ann@fabrikam.com", "<sent-0@contoso.com>"), dsn("s4", "5.2.2"), dsn("s5", "5.2.2")}, rep,
			[]followed.EventKind{followed.Bounced, followed.Bounced, followed.Bounced, followed.Replied, followed.Bounced, followed.Bounced}, 1, false},
		{"a reply to an unknown message is ignored", [][]byte{replyMail("u", "ann@fabrikam.com", "<unknown@x>")}, rep, nil, 0, false},
		{"mail in another owner's mailbox is ignored", [][]byte{replyMail("o", "ann@fabrikam.com", "<sent-0@contoso.com>")}, "other@contoso.com", nil, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := sqlite.OpenTemp(t)
			clk := &clock{now: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)}
			sent(t, db, clk.Now(), "ann@fabrikam.com")
			p := newProcessor(t, db, clk, "p")
			for _, raw := range tc.mails {
				clk.Add(time.Hour)
				if _, err := p.SubmitRaw(ctx, tc.mailbox, raw); err != nil {
					t.Fatal(err)
				}
				if _, err := p.Drain(ctx); err != nil {
					t.Fatal(err)
				}
			}
			c, evs := counters(t, db)
			var kinds []followed.EventKind
			for i := len(evs) - 1; i >= 0; i-- {
				kinds = append(kinds, evs[i].Kind)
				if evs[i].Recipient != 0 {
					t.Fatalf("event %+v not attributed to ann", evs[i])
				}
			}
			if strings.Join(kindStrings(kinds), ",") != strings.Join(kindStrings(tc.wantKinds), ",") || c.Replies != tc.replies {
				t.Fatalf("kinds %v replies %d, want %v %d", kinds, c.Replies, tc.wantKinds, tc.replies)
			}
			sups, err := db.Suppressions(ctx, []string{"ann@fabrikam.com"})
			if err != nil {
				t.Fatal(err)
			}
			sup, ok := sups["ann@fabrikam.com"]
			if ok != tc.suppressed {
				t.Fatalf("suppressed %v (%+v), want %v", ok, sup, tc.suppressed)
			}
			if ok && !sup.Until.Equal(clk.Now().AddDate(0, 6, 0)) {
				t.Fatalf("suppressed until %v, want six months from %v", sup.Until, clk.Now())
			}
		})
	}
}

func kindStrings(ks []followed.EventKind) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = string(k)
	}
	slices.Sort(out) // replies carry their own Date, so listing order need not be arrival order
	return out
}

func TestSubmitRawRefusesBadMail(t *testing.T) {
	db := sqlite.OpenTemp(t)
	p := newProcessor(t, db, &clock{now: time.Now()}, "p")
	for _, c := range []struct {
		name, mailbox string
		raw           []byte
	}{
		{"no header section", rep, []byte("\x00\x01 not mail")},
		{"too large", rep, []byte("From: a@b.c\r\n\r\n" + strings.Repeat("x", 2<<20))},
		{"no mailbox", " ", replyMail("a", "ann@fabrikam.com", "<x@y>")},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := p.SubmitRaw(context.Background(), c.mailbox, c.raw); !errors.Is(err, followed.ErrBadInput) {
				t.Fatalf("err %v, want ErrBadInput", err)
			}
		})
	}
	if n, _ := db.InboundPending(context.Background()); n != 0 {
		t.Fatalf("%d bad mails queued", n)
	}
}

func FuzzParseNotifications(f *testing.F) {
	f.Add([]byte(`{"value":[{"subscriptionId":"s","clientState":"c","resourceData":{"id":"m"}}]}`))
	f.Add([]byte(`{"value":[{"subscriptionId":"s","lifecycleEvent":"missed"}]}`))
	f.Add([]byte(`{"value":null}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ns, err := inbound.ParseNotifications(body)
		if err != nil && !errors.Is(err, followed.ErrBadInput) {
			t.Fatalf("error %v is not ErrBadInput", err)
		}
		if err == nil && ns == nil {
			t.Fatal("no error and no notifications")
		}
	})
}
