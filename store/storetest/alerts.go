package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/engage-email/engage/alerts"
	"github.com/engage-email/engage/followed"
)

func alert(key, owner string, at time.Time) alerts.Alert {
	return alerts.Alert{ID: "id-" + key, Key: key, Owner: owner, Kind: alerts.FirstOpen, At: at, MessageID: "m",
		Subject: "Deal", Recipient: "a@x.com", Device: followed.Device{Type: followed.DeviceDesktop, OS: "Windows", Client: "Outlook"}}
}

func seqs(as []alerts.Alert) []int64 {
	out := []int64{}
	for _, a := range as {
		out = append(out, a.Seq)
	}
	return out
}

func runAlerts(t *testing.T, open func(t *testing.T) Stores) {
	ctx := context.Background()

	t.Run("sequence, dedupe and replay after a cursor", func(t *testing.T) {
		s := open(t).Alerts
		if last, err := s.LastAlertSeq(ctx); err != nil || last != 0 {
			t.Fatalf("empty store: last %d, err %v", last, err)
		}
		in := []alerts.Alert{alert("k1", "rep@contoso.com", t0), alert("k2", "other@contoso.com", t0.Add(time.Second)),
			alert("k1", "rep@contoso.com", t0), alert("k3", "rep@contoso.com", t0.Add(2*time.Second))}
		in[3].Kind, in[3].Reminder, in[3].Condition, in[3].URL = alerts.ReminderDue, "r1", alerts.NoReplyBy, "https://example.com"
		stored, err := s.AppendAlerts(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if len(stored) != 3 || !(stored[0].Seq < stored[1].Seq && stored[1].Seq < stored[2].Seq) {
			t.Fatalf("stored %v, want three with increasing seq", seqs(stored))
		}
		again, err := s.AppendAlerts(ctx, in[:2])
		if err != nil || len(again) != 0 {
			t.Fatalf("second report stored %v (err %v), want nothing", seqs(again), err)
		}
		if last, _ := s.LastAlertSeq(ctx); last != stored[2].Seq {
			t.Fatalf("last seq %d, want %d", last, stored[2].Seq)
		}
		after, err := s.AlertsAfter(ctx, stored[0].Seq, 10)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(after, stored[1:]) {
			t.Fatalf("after cursor:\n got %+v\nwant %+v", after, stored[1:])
		}
		if page, _ := s.AlertsAfter(ctx, 0, 2); !reflect.DeepEqual(seqs(page), seqs(stored[:2])) {
			t.Fatalf("limit: got %v", seqs(page))
		}
	})

	t.Run("sequence stays monotonic under concurrent writers", func(t *testing.T) {
		s := open(t).Alerts
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 25 {
					if _, err := s.AppendAlerts(ctx, []alerts.Alert{alert(fmt.Sprintf("w%d-%d", w, i), "rep@contoso.com", t0)}); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		all, err := s.AlertsAfter(ctx, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 200 {
			t.Fatalf("%d alerts, want 200", len(all))
		}
		for i := 1; i < len(all); i++ {
			if all[i].Seq <= all[i-1].Seq {
				t.Fatalf("seq not increasing at %d: %d after %d", i, all[i].Seq, all[i-1].Seq)
			}
		}
	})

	t.Run("listing and read marks", func(t *testing.T) {
		s := open(t).Alerts
		var in []alerts.Alert
		for i := range 5 {
			in = append(in, alert(fmt.Sprintf("k%d", i), "rep@contoso.com", t0.Add(time.Duration(i)*time.Second)))
		}
		in = append(in, alert("theirs", "other@contoso.com", t0))
		st, err := s.AppendAlerts(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		n, err := s.MarkAlertsRead(ctx, "rep@contoso.com", []string{st[1].ID, st[3].ID, st[5].ID, "nope"}, t0.Add(time.Hour))
		if err != nil || n != 2 {
			t.Fatalf("marked %d (err %v), want 2: another owner's id must not count", n, err)
		}
		if n, _ := s.MarkAlertsRead(ctx, "rep@contoso.com", []string{st[1].ID}, t0.Add(2*time.Hour)); n != 0 {
			t.Fatalf("marking twice changed %d", n)
		}
		tests := []struct {
			name string
			q    alerts.AlertQuery
			want []int64
		}{
			{"newest first", alerts.AlertQuery{Limit: 10}, []int64{st[4].Seq, st[3].Seq, st[2].Seq, st[1].Seq, st[0].Seq}},
			{"before", alerts.AlertQuery{Before: st[3].Seq, Limit: 2}, []int64{st[2].Seq, st[1].Seq}},
			{"unread", alerts.AlertQuery{UnreadOnly: true, Limit: 10}, []int64{st[4].Seq, st[2].Seq, st[0].Seq}},
			{"ascending after", alerts.AlertQuery{Ascending: true, After: st[1].Seq, Limit: 10}, []int64{st[2].Seq, st[3].Seq, st[4].Seq}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				tt.q.Owner = "rep@contoso.com"
				got, err := s.ListAlerts(ctx, tt.q)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(seqs(got), tt.want) {
					t.Fatalf("got %v, want %v", seqs(got), tt.want)
				}
			})
		}
		got, _ := s.ListAlerts(ctx, alerts.AlertQuery{Owner: "rep@contoso.com", Ascending: true, After: st[0].Seq, Limit: 1})
		if len(got) != 1 || !got[0].ReadAt.Equal(t0.Add(time.Hour)) {
			t.Fatalf("read time lost: %+v", got)
		}
	})

	t.Run("reminders: cancel, claim once under concurrency, lease expiry", func(t *testing.T) {
		s := open(t).Alerts
		for i := range 10 {
			r := alerts.Reminder{ID: fmt.Sprintf("r%d", i), Owner: "rep@contoso.com", MessageID: "m", Subject: "Deal",
				Condition: alerts.NoReplyBy, DueAt: t0.Add(time.Duration(i) * time.Minute), CreatedAt: t0.Add(-time.Hour), State: alerts.Pending}
			if err := s.CreateReminder(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.CancelReminder(ctx, "other@contoso.com", "r9", t0); !errors.Is(err, followed.ErrNotFound) {
			t.Fatalf("cancel by another owner: err %v, want ErrNotFound", err)
		}
		for range 2 {
			r, err := s.CancelReminder(ctx, "rep@contoso.com", "r9", t0)
			if err != nil || r.State != alerts.Cancelled || !r.DoneAt.Equal(t0) {
				t.Fatalf("cancel: %+v, %v", r, err)
			}
		}
		now := t0.Add(5 * time.Minute) // r0..r5 are due
		claimed := map[string]string{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rs, err := s.ClaimDueReminders(ctx, fmt.Sprintf("i%d", w), now, time.Minute, 100)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				defer mu.Unlock()
				for _, r := range rs {
					if prev, ok := claimed[r.ID]; ok {
						t.Errorf("%s claimed by %s and i%d", r.ID, prev, w)
					}
					claimed[r.ID] = fmt.Sprintf("i%d", w)
				}
			}()
		}
		wg.Wait()
		if len(claimed) != 6 {
			t.Fatalf("claimed %v, want r0..r5", claimed)
		}
		if rs, _ := s.ClaimDueReminders(ctx, "late", now.Add(30*time.Second), time.Minute, 100); len(rs) != 0 {
			t.Fatalf("claimed %d reminders under a running lease", len(rs))
		}
		// r0's lease runs out: another instance takes it, and the first may no longer settle it.
		taken, err := s.ClaimDueReminders(ctx, "rescuer", now.Add(2*time.Minute), time.Minute, 1)
		if err != nil || len(taken) != 1 || taken[0].ID != "r0" {
			t.Fatalf("claim after expiry: %+v, %v", taken, err)
		}
		r0 := taken[0]
		r0.State, r0.DoneAt = alerts.Fired, now.Add(2*time.Minute)
		a := alert("reminder:r0", "rep@contoso.com", r0.DueAt)
		a.Kind, a.Reminder, a.Condition = alerts.ReminderDue, "r0", alerts.NoReplyBy
		if err := s.FinishReminder(ctx, claimed["r0"], r0, &a); !errors.Is(err, alerts.ErrLeaseLost) {
			t.Fatalf("finish by the expired holder: err %v, want ErrLeaseLost", err)
		}
		if as, _ := s.AlertsAfter(ctx, 0, 10); len(as) != 0 {
			t.Fatalf("a lost lease wrote alerts: %+v", as)
		}
		if err := s.FinishReminder(ctx, "rescuer", r0, &a); err != nil {
			t.Fatal(err)
		}
		if err := s.FinishReminder(ctx, "rescuer", r0, &a); !errors.Is(err, alerts.ErrLeaseLost) {
			t.Fatalf("finishing twice: err %v, want ErrLeaseLost", err)
		}
		r1 := alerts.Reminder{ID: "r1", State: alerts.Skipped, Reason: "REPLIED", DoneAt: now}
		if err := s.FinishReminder(ctx, claimed["r1"], r1, nil); err != nil {
			t.Fatal(err)
		}
		if as, _ := s.AlertsAfter(ctx, 0, 10); len(as) != 1 || as[0].Reminder != "r0" {
			t.Fatalf("alerts after settling: %+v", as)
		}
		rs, err := s.Reminders(ctx, "rep@contoso.com", "m")
		if err != nil || len(rs) != 10 {
			t.Fatalf("reminders: %d, %v", len(rs), err)
		}
		states := map[string]alerts.State{}
		for _, r := range rs {
			states[r.ID] = r.State
		}
		if states["r0"] != alerts.Fired || states["r1"] != alerts.Skipped || states["r9"] != alerts.Cancelled || states["r2"] != alerts.Pending {
			t.Fatalf("states %v", states)
		}
		if rs[1].Reason != "REPLIED" || rs[0].Subject != "Deal" || !rs[0].DueAt.Equal(t0) {
			t.Fatalf("fields lost: %+v", rs[:2])
		}
		if got, _ := s.Reminders(ctx, "other@contoso.com", ""); len(got) != 0 {
			t.Fatalf("another owner sees %d reminders", len(got))
		}
	})

	t.Run("preferences", func(t *testing.T) {
		s := open(t).Alerts
		p, err := s.AlertPreferences(ctx, "rep@contoso.com")
		if err != nil || p != alerts.DefaultPreferences {
			t.Fatalf("default: %+v, %v", p, err)
		}
		want := alerts.Preferences{LinkClicked: true, AttachmentOpened: true, FirstOpenSince: t0.Add(time.Minute)}
		for range 2 {
			if err := s.SetAlertPreferences(ctx, "rep@contoso.com", want); err != nil {
				t.Fatal(err)
			}
		}
		if p, _ := s.AlertPreferences(ctx, "rep@contoso.com"); p != want {
			t.Fatalf("got %+v, want %+v", p, want)
		}
	})

	t.Run("engagements after the shared cursor", func(t *testing.T) {
		st := open(t)
		mustCreate(t, st.Followed, message("m", "rep@contoso.com", "Deal", t0, true, "a@x.com", "b@y.com"))
		// rep wants every kind; quiet has chosen nothing (DefaultPreferences: replies, no clicks); noreply
		// wants clicks but not replies.
		mustCreate(t, st.Followed, message("q", "quiet@contoso.com", "Quiet", t0, true, "c@x.com"))
		mustCreate(t, st.Followed, message("n", "noreply@contoso.com", "Clicks", t0, true, "d@x.com"))
		for owner, p := range map[string]alerts.Preferences{
			"rep@contoso.com":     {FirstOpen: true, ReplyReceived: true, LinkClicked: true, AttachmentOpened: true},
			"noreply@contoso.com": {FirstOpen: true, LinkClicked: true},
		} {
			if err := st.Alerts.SetAlertPreferences(ctx, owner, p); err != nil {
				t.Fatal(err)
			}
		}
		machine := event("e3", "m", followed.LinkClicked, t0.Add(3*time.Second), 1, 0)
		machine.Machine = true
		attach := event("e5", "m", followed.AttachmentOpened, t0.Add(5*time.Second), 1, 0)
		attach.URL = "https://files.example/deck.pdf"
		evs := []followed.Event{event("e1", "m", followed.Opened, t0.Add(time.Second), 0, -1),
			event("e2", "m", followed.LinkClicked, t0.Add(2*time.Second), 0, 1), machine,
			event("e4", "m", followed.Replied, t0.Add(4*time.Second), 1, -1), attach,
			event("q1", "q", followed.LinkClicked, t0.Add(6*time.Second), 0, 0), event("q2", "q", followed.Replied, t0.Add(7*time.Second), 0, -1),
			event("n1", "n", followed.Replied, t0.Add(8*time.Second), 0, -1), event("n2", "n", followed.LinkClicked, t0.Add(9*time.Second), 0, 0)}
		if _, err := st.Followed.RecordEvents(ctx, evs); err != nil {
			t.Fatal(err)
		}
		got, through, err := st.Alerts.Engagements(ctx, 100)
		if err != nil || through == 0 {
			t.Fatalf("engagements: through %d, err %v", through, err)
		}
		var ids []string
		for _, e := range got {
			ids = append(ids, fmt.Sprintf("%s/%s/%s/%s", e.Event.ID, e.Event.Kind, e.Recipient, e.Owner))
		}
		want := []string{"e2/LINK_CLICKED/a@x.com/rep@contoso.com", "e4/REPLIED/b@y.com/rep@contoso.com",
			"e5/ATTACHMENT_OPENED/b@y.com/rep@contoso.com", "q2/REPLIED/c@x.com/quiet@contoso.com",
			"n2/LINK_CLICKED/d@x.com/noreply@contoso.com"}
		if !reflect.DeepEqual(ids, want) {
			t.Fatalf("got %v, want %v", ids, want)
		}
		if got[2].Event.URL != attach.URL || got[0].Subject != "Deal" || !got[0].Event.At.Equal(t0.Add(2*time.Second)) {
			t.Fatalf("fields lost: %+v", got)
		}
		if _, t2, _ := st.Alerts.Engagements(ctx, 2); t2 >= through {
			t.Fatalf("a limit of 2 scanned through %d, as far as %d", t2, through)
		}
		// A page holding only an open reports none, but how far it reached, so that the reader moves on.
		if only, t1, err := st.Alerts.Engagements(ctx, 1); err != nil || len(only) != 0 || t1 <= 0 || t1 >= through {
			t.Fatalf("a limit of 1 (an open): %v, through %d (all: %d), err %v", only, t1, through, err)
		}
		a := alert("event:e2", "rep@contoso.com", t0)
		if stored, err := st.Alerts.AppendEngagementAlerts(ctx, []alerts.Alert{a}, through); err != nil || len(stored) != 1 {
			t.Fatalf("append: %v, %v", stored, err)
		}
		if _, err := st.Alerts.AppendEngagementAlerts(ctx, nil, 1); err != nil { // an older cursor never moves it back
			t.Fatal(err)
		}
		if rest, t3, err := st.Alerts.Engagements(ctx, 100); err != nil || len(rest) != 0 || t3 != 0 {
			t.Fatalf("after the cursor moved: %v, through %d, err %v", rest, t3, err)
		}
	})

	t.Run("unannounced first opens", func(t *testing.T) { runUnannouncedFirstOpens(t, open) })
	t.Run("withdrawals", func(t *testing.T) { runWithdrawals(t, open) })
}

// firstOpenLine renders what the recovery sweep reports of a first open, in one comparable line.
func firstOpenLine(fo followed.FirstOpen) string {
	return fmt.Sprintf("%s/%d %s %s %q %s %s/%s", fo.MessageID, fo.Recipient, fo.At.Sub(t0), fo.Owner, fo.Subject, fo.Email,
		fo.Device.Type, fo.Device.Client)
}

// runUnannouncedFirstOpens: the sweep finds a person's first opens recorded without their alert, and
// not those announced, a machine's, relabelled ones, or ones before since.
func runUnannouncedFirstOpens(t *testing.T, open func(t *testing.T) Stores) {
	ctx := context.Background()
	sec := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }
	machine := func(ev followed.Event) followed.Event {
		ev.Machine, ev.Reason, ev.Rule = true, "APPLE_PRIVACY_PROXY", "apple-mpp-agent"
		return ev
	}
	// m1 (individual): ann opens twice, bob once; m2 (shared): its only recipient opens; m3: a machine's open only.
	seed := func(t *testing.T) Stores {
		st := open(t)
		mustCreate(t, st.Followed, message("m1", "rep@contoso.com", "Offer", t0, true, "ann@x.com", "bob@y.com"),
			message("m2", "other@contoso.com", "Shared", t0, false, "cy@z.com"),
			message("m3", "rep@contoso.com", "Scanned", t0, true, "dee@x.com"))
		o := event("o2", "m1", followed.Opened, sec(5), 1, -1)
		o.Device = followed.Device{Type: followed.DeviceMobile, OS: "iOS", Client: "Apple Mail"}
		if _, err := st.Followed.RecordEvents(ctx, []followed.Event{event("o1", "m1", followed.Opened, sec(2), 0, -1),
			event("o1b", "m1", followed.Opened, sec(3), 0, -1), o, event("o3", "m2", followed.Opened, sec(7), followed.Shared, -1),
			machine(event("o4", "m3", followed.Opened, sec(1), 0, -1)), event("c1", "m3", followed.LinkClicked, sec(4), 0, 0)}); err != nil {
			t.Fatal(err)
		}
		return st
	}
	all := []string{
		`m1/0 2s rep@contoso.com "Offer" ann@x.com DESKTOP/Outlook`,
		`m1/1 5s rep@contoso.com "Offer" bob@y.com MOBILE/Apple Mail`,
		`m2/-1 7s other@contoso.com "Shared"  DESKTOP/Outlook`,
	}
	tests := []struct {
		name    string
		prepare func(t *testing.T, st Stores)
		since   time.Time
		limit   int
		want    []string
	}{
		{"recorded without alerts: every person's first open", nil, t0, 10, all},
		{"oldest first, up to the limit", nil, t0, 2, all[:2]},
		{"since bounds the window", nil, sec(3), 10, all[1:]},
		{"an announced open is not returned", func(t *testing.T, st Stores) {
			a := alert(alerts.FirstOpenKey("m1", 1), "rep@contoso.com", sec(5))
			if _, err := st.Alerts.AppendAlerts(ctx, []alerts.Alert{a}); err != nil {
				t.Fatal(err)
			}
		}, t0, 10, []string{all[0], all[2]}},
		{"another kind's alert on the message does not count", func(t *testing.T, st Stores) {
			a := alert("event:c1", "rep@contoso.com", sec(4))
			a.MessageID = "m1"
			if _, err := st.Alerts.AppendAlerts(ctx, []alerts.Alert{a}); err != nil {
				t.Fatal(err)
			}
		}, t0, 10, all},
		{"a relabelled first open passes to the person's next open", func(t *testing.T, st Stores) {
			if err := st.Followed.Relabel(ctx, relabel("o1")); err != nil {
				t.Fatal(err)
			}
		}, t0, 10, []string{`m1/0 3s rep@contoso.com "Offer" ann@x.com DESKTOP/Outlook`, all[1], all[2]}},
		{"a person's every open relabelled: a machine's, not announced", func(t *testing.T, st Stores) {
			if err := st.Followed.Relabel(ctx, relabel("o1", "o1b", "o3")); err != nil {
				t.Fatal(err)
			}
		}, t0, 10, []string{all[1]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := seed(t)
			if tt.prepare != nil {
				tt.prepare(t, st)
			}
			got, err := st.Alerts.UnannouncedFirstOpens(ctx, tt.since, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			lines := []string{}
			for _, fo := range got {
				lines = append(lines, firstOpenLine(fo))
			}
			if !reflect.DeepEqual(lines, tt.want) {
				t.Fatalf("got  %q\nwant %q", lines, tt.want)
			}
		})
	}

	t.Run("each first open the recorder reports is found until its alert is stored", func(t *testing.T) {
		st := open(t)
		mustCreate(t, st.Followed, message("m", "rep@contoso.com", "Deal", t0, true, "ann@x.com"))
		firsts, err := st.Followed.RecordEvents(ctx, []followed.Event{event("e1", "m", followed.Opened, sec(1), 0, -1)})
		if err != nil || len(firsts) != 1 {
			t.Fatalf("record: %+v, %v", firsts, err)
		}
		got, err := st.Alerts.UnannouncedFirstOpens(ctx, t0, 10)
		if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], followed.FirstOpen{MessageID: "m", Owner: "rep@contoso.com",
			Subject: "Deal", Recipient: 0, Email: "ann@x.com", At: firsts[0].At.UTC(), Device: firsts[0].Device}) {
			t.Fatalf("sweep %+v (err %v), want what the recorder reported, %+v", got, err, firsts[0])
		}
		a := alert(alerts.FirstOpenKey("m", 0), "rep@contoso.com", sec(1))
		if _, err := st.Alerts.AppendAlerts(ctx, []alerts.Alert{a}); err != nil {
			t.Fatal(err)
		}
		if got, err := st.Alerts.UnannouncedFirstOpens(ctx, t0, 10); err != nil || len(got) != 0 {
			t.Fatalf("after the alert: %+v, %v", got, err)
		}
		if _, err := st.Alerts.UnannouncedFirstOpens(ctx, t0, 0); !errors.Is(err, followed.ErrBadInput) {
			t.Fatalf("limit 0: err %v, want ErrBadInput", err)
		}
	})
}
