package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/engage-email/engage/delivery"
	"github.com/engage-email/engage/followed"
)

// labelStore is the backend's followed store seen as a followed.LabelStore, which every backend's is.
func labelStore(t *testing.T, s Stores) followed.LabelStore {
	t.Helper()
	ls, ok := s.Followed.(followed.LabelStore)
	if !ok {
		t.Fatalf("%T implements followed.Store but not followed.LabelStore (SentTimes, EarlyOpens)", s.Followed)
	}
	return ls
}

// counters renders what a relabel moves, in one line a table can hold:
// "opens uniqueOpens clicks uniqueClicks attachmentOpens machineOpens machineClicks first last | link0 clicks/unique, link1 ...".
func counters(t *testing.T, s followed.Store, id string) string {
	t.Helper()
	m, err := s.Message(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	c := m.Counters
	at := func(x time.Time) string {
		if x.IsZero() {
			return "-"
		}
		return x.Sub(t0).String()
	}
	out := fmt.Sprintf("%d %d %d %d %d %d %d %s %s |", c.Opens, c.UniqueOpens, c.Clicks, c.UniqueClicks, c.AttachmentOpens,
		c.MachineOpens, c.MachineClicks, at(c.FirstOpenedAt), at(c.LastOpenedAt))
	for _, l := range m.Links {
		out += fmt.Sprintf(" %d/%d", l.Clicks, l.UniqueClicks)
	}
	return out
}

func relabel(ids ...string) []followed.Relabel {
	out := make([]followed.Relabel, len(ids))
	for i, id := range ids {
		out[i] = followed.Relabel{EventID: id, Reason: "SECURITY_SCANNER", Rule: "honeypot"}
	}
	return out
}

func runRelabel(t *testing.T, open func(t *testing.T) Stores) {
	ctx := context.Background()
	min := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }
	// Ann (0) opens twice and clicks link 0 twice and link 1 once; Bob (1) opens once and opens an
	// attachment; a scanner's open is already a machine's; Ann replies.
	seed := func(t *testing.T) (followed.Store, Stores) {
		st := open(t)
		s := st.Followed
		mustCreate(t, s, message("m1", "rep@contoso.com", "Offer", t0, true, "ann@x.com", "bob@y.com"))
		machine := event("scan", "m1", followed.Opened, min(0), 0, -1)
		machine.Machine, machine.Reason, machine.Rule = true, "APPLE_PRIVACY_PROXY", "apple-mpp-agent"
		reply := event("reply", "m1", followed.Replied, min(9), 0, -1)
		if _, err := s.RecordEvents(ctx, []followed.Event{machine,
			event("o1", "m1", followed.Opened, min(1), 0, -1), event("o2", "m1", followed.Opened, min(2), 0, -1),
			event("o3", "m1", followed.Opened, min(3), 1, -1),
			event("c1", "m1", followed.LinkClicked, min(4), 0, 0), event("c2", "m1", followed.LinkClicked, min(5), 0, 0),
			event("c3", "m1", followed.LinkClicked, min(6), 0, 1),
			event("a1", "m1", followed.AttachmentOpened, min(7), 1, 0), reply}); err != nil {
			t.Fatal(err)
		}
		return s, st
	}
	const seeded = "3 2 3 1 1 1 0 1m0s 3m0s | 2/1 1/1"

	tests := []struct {
		name  string
		steps [][]string // relabel batches, applied in order
		want  string
	}{
		{"nothing", nil, seeded},
		{"a later open of the same person keeps the first open", [][]string{{"o2"}}, "2 2 3 1 1 2 0 1m0s 3m0s | 2/1 1/1"},
		{"the first open passes to the person's next open", [][]string{{"o1"}}, "2 2 3 1 1 2 0 2m0s 3m0s | 2/1 1/1"},
		{"all of a person's opens: the unique open goes", [][]string{{"o1", "o2"}}, "1 1 3 1 1 3 0 3m0s 3m0s | 2/1 1/1"},
		{"the last open moves back", [][]string{{"o3"}}, "2 1 3 1 1 2 0 1m0s 2m0s | 2/1 1/1"},
		{"every open", [][]string{{"o1"}, {"o2", "o3"}}, "0 0 3 1 1 4 0 - - | 2/1 1/1"},
		{"the first click passes to the next on the link", [][]string{{"c1"}}, "3 2 2 1 1 1 1 1m0s 3m0s | 1/1 1/1"},
		{"a link's every click", [][]string{{"c1", "c2"}}, "3 2 1 1 1 1 2 1m0s 3m0s | 0/0 1/1"},
		{"every click", [][]string{{"c3", "c1", "c2"}}, "3 2 0 0 1 1 3 1m0s 3m0s | 0/0 0/0"},
		{"an attachment open becomes a machine's click", [][]string{{"a1"}}, "3 2 3 1 0 1 1 1m0s 3m0s | 2/1 1/1"},
		{"again, already a machine's, replies and unknown ids change nothing", [][]string{{"c1"}, {"c1", "scan", "reply", "nope"}},
			"3 2 2 1 1 1 1 1m0s 3m0s | 1/1 1/1"},
		{"an id twice in a batch counts once", [][]string{{"o3", "o3"}}, "2 1 3 1 1 2 0 1m0s 2m0s | 2/1 1/1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := seed(t)
			for _, ids := range tt.steps {
				if err := s.Relabel(ctx, relabel(ids...)); err != nil {
					t.Fatalf("relabel %v: %v", ids, err)
				}
			}
			if got := counters(t, s, "m1"); got != tt.want {
				t.Fatalf("counters\n got %s\nwant %s", got, tt.want)
			}
		})
	}

	t.Run("events carry the new label; replies keep theirs", func(t *testing.T) {
		s, _ := seed(t)
		if err := s.Relabel(ctx, []followed.Relabel{{EventID: "o1", Reason: "PREFETCH", Rule: "prefetch-after-send"},
			{EventID: "reply", Reason: "SECURITY_SCANNER", Rule: "honeypot"},
			{EventID: "scan", Reason: "SECURITY_SCANNER", Rule: "honeypot"}}); err != nil {
			t.Fatal(err)
		}
		evs, err := s.Events(ctx, followed.EventQuery{MessageID: "m1", Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, e := range evs {
			got[e.ID] = fmt.Sprintf("%v/%s/%s", e.Machine, e.Reason, e.Rule)
		}
		for id, want := range map[string]string{"o1": "true/PREFETCH/prefetch-after-send", "o2": "false//",
			"reply": "false//", "scan": "true/APPLE_PRIVACY_PROXY/apple-mpp-agent"} {
			if got[id] != want {
				t.Errorf("event %s: %s, want %s", id, got[id], want)
			}
		}
	})

	t.Run("bad input writes nothing", func(t *testing.T) {
		s, _ := seed(t)
		for _, rs := range [][]followed.Relabel{
			{{EventID: "o1", Reason: "SECURITY_SCANNER"}, {EventID: "", Reason: "SECURITY_SCANNER"}},
			{{EventID: "o1", Reason: "SECURITY_SCANNER"}, {EventID: "o2"}},
		} {
			if err := s.Relabel(ctx, rs); !errors.Is(err, followed.ErrBadInput) {
				t.Fatalf("relabel %+v: err = %v, want ErrBadInput", rs, err)
			}
		}
		if got := counters(t, s, "m1"); got != seeded {
			t.Fatalf("counters after refused relabels: %s, want %s", got, seeded)
		}
	})

	t.Run("a person's open after every earlier one was relabelled is a first open again", func(t *testing.T) {
		s, _ := seed(t)
		if err := s.Relabel(ctx, relabel("o3")); err != nil {
			t.Fatal(err)
		}
		firsts, err := s.RecordEvents(ctx, []followed.Event{event("o4", "m1", followed.Opened, min(20), 1, -1)})
		if err != nil || len(firsts) != 1 || firsts[0].Recipient != 1 {
			t.Fatalf("first opens %+v, err %v", firsts, err)
		}
		if got, want := counters(t, s, "m1"), "3 2 3 1 1 2 0 1m0s 20m0s | 2/1 1/1"; got != want {
			t.Fatalf("counters %s, want %s", got, want)
		}
	})

	t.Run("send times come from delivery", func(t *testing.T) {
		st := open(t)
		ls := labelStore(t, st)
		mustCreate(t, st.Followed, message("m1", "rep@contoso.com", "Sent", t0, false, "a@x.com"),
			message("m2", "rep@contoso.com", "Draft", t0, false, "a@x.com"))
		sent := min(90)
		sendJob(t, st.Delivery, "m1", sent)
		got, err := ls.SentTimes(ctx, []string{"m1", "m2", "nope"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || !got["m1"].Equal(sent) {
			t.Fatalf("send times %v, want only m1 at %s", got, sent)
		}
	})

	t.Run("early opens", func(t *testing.T) {
		st := open(t)
		ls := labelStore(t, st)
		s := st.Followed
		sec := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }
		// m1 was created at t0 and never sent through delivery; m2 created at t0, sent 90 minutes later.
		mustCreate(t, s, message("m1", "rep@contoso.com", "A", t0, true, "a@x.com", "b@y.com"),
			message("m2", "rep@contoso.com", "B", t0, true, "c@z.com"),
			message("m3", "rep@contoso.com", "C", t0, true, "d@w.com", "e@w.com"))
		sendJob(t, st.Delivery, "m2", min(90))
		proxied := event("proxied", "m1", followed.Opened, sec(4), 1, -1)
		proxied.Reason, proxied.Rule = "PROXIED", "gmail-image-proxy"
		mpp := event("mpp", "m1", followed.Opened, sec(3), 1, -1)
		mpp.Machine, mpp.Reason, mpp.Rule = true, "APPLE_PRIVACY_PROXY", "apple-mpp-agent"
		scan := event("scan", "m1", followed.LinkClicked, sec(50), 0, 0)
		scan.Machine, scan.Reason = true, "SECURITY_SCANNER"
		if _, err := s.RecordEvents(ctx, []followed.Event{
			event("a-early", "m1", followed.Opened, sec(5), 0, -1), // then a click at 40s; a scanner's click later does not count
			event("a-click", "m1", followed.LinkClicked, sec(40), 0, 1), scan,
			event("b-early", "m1", followed.Opened, sec(9), 1, -1), // nothing of b's after but machine and proxied events before
			proxied, mpp,
			event("a-late", "m1", followed.Opened, sec(120), 0, -1),
			event("c-created", "m2", followed.Opened, sec(6), 0, -1), // early for the creation, not for the send
			event("c-sent", "m2", followed.Opened, min(90).Add(8*time.Second), 0, -1),
			// d's mail system answered for them (away): no sign of d; e clicked, then the images loaded.
			event("d-early", "m3", followed.Opened, sec(7), 0, -1), event("d-away", "m3", followed.AutoReplied, sec(20), 0, -1),
			event("e-click", "m3", followed.LinkClicked, sec(2), 1, 0), event("e-early", "m3", followed.Opened, sec(8), 1, -1),
		}); err != nil {
			t.Fatal(err)
		}
		q := followed.EarlyOpenQuery{Before: min(200), Within: 15 * time.Second, Limit: 100}
		got := func(q followed.EarlyOpenQuery) string {
			t.Helper()
			os, err := ls.EarlyOpens(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			out := ""
			for _, o := range os {
				later := "-"
				if !o.LastActivity.IsZero() {
					later = o.LastActivity.Sub(t0).String()
				}
				out += fmt.Sprintf("%s@%s sent %s later %s ip %s; ", o.Event.ID, o.Event.At.Sub(t0), o.SentAt.Sub(t0), later, o.Event.IP)
			}
			return out
		}
		want := "a-early@5s sent 0s later 2m0s ip 192.0.2.1; d-early@7s sent 0s later - ip 192.0.2.1; e-early@8s sent 0s later 8s ip 192.0.2.1; " +
			"b-early@9s sent 0s later - ip 192.0.2.1; c-sent@1h30m8s sent 1h30m0s later - ip 192.0.2.1; "
		if g := got(q); g != want {
			t.Fatalf("early opens\n got %s\nwant %s", g, want)
		}
		q.Limit = 1
		q.After = &followed.Cursor{At: sec(8), ID: "e-early"}
		if g := got(q); g != "b-early@9s sent 0s later - ip 192.0.2.1; " {
			t.Fatalf("page after a-early: %s", g)
		}
		q.After, q.Before = nil, sec(9)
		if g := got(q); g != "a-early@5s sent 0s later 2m0s ip 192.0.2.1; " {
			t.Fatalf("before 9s: %s", g)
		}
		if err := s.Relabel(ctx, relabel("a-early")); err != nil {
			t.Fatal(err)
		}
		q.Before, q.Limit = min(200), 100
		if g := got(q); g != "d-early@7s sent 0s later - ip 192.0.2.1; e-early@8s sent 0s later 8s ip 192.0.2.1; "+
			"b-early@9s sent 0s later - ip 192.0.2.1; c-sent@1h30m8s sent 1h30m0s later - ip 192.0.2.1; " {
			t.Fatalf("after relabelling a-early: %s", g)
		}
		if _, err := ls.EarlyOpens(ctx, followed.EarlyOpenQuery{Before: min(200), Within: time.Second}); !errors.Is(err, followed.ErrBadInput) {
			t.Fatalf("no limit: err = %v, want ErrBadInput", err)
		}
	})
}

// sendJob records that delivery sent message id at sent.
func sendJob(t *testing.T, d delivery.Store, id string, sent time.Time) {
	t.Helper()
	ctx := context.Background()
	due := sent.Add(-time.Minute)
	if err := d.CreateJob(ctx, scheduledJob(id, due)); err != nil {
		t.Fatal(err)
	}
	js, err := d.ClaimDueJobs(ctx, "w1", due, time.Minute, 10)
	if err != nil || len(js) != 1 {
		t.Fatalf("claim %s: %v %v", id, js, err)
	}
	j := js[0]
	j.Status, j.SentAt = delivery.StatusSent, sent
	if err := d.FinishJob(ctx, "w1", j); err != nil {
		t.Fatal(err)
	}
}
