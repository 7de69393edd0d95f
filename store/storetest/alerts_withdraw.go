package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/engage-email/engage/alerts"
	"github.com/engage-email/engage/followed"
)

// runWithdrawals: an alert whose event is relabelled a machine's is found, withdrawn once however many
// withdraw it at once, and a first-open alert frees its key for the recipient's first open by a person.
func runWithdrawals(t *testing.T, open func(t *testing.T) Stores) {
	ctx := context.Background()
	sec := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }
	// m1 (individual): ann opens at 2s and again at 9s, bob at 5s and clicks at 6s; both first opens
	// and the click were alerted.
	seed := func(t *testing.T) (Stores, alerts.Alert, alerts.Alert) {
		st := open(t)
		mustCreate(t, st.Followed, message("m1", "rep@contoso.com", "Offer", t0, true, "ann@x.com", "bob@y.com"))
		if _, err := st.Followed.RecordEvents(ctx, []followed.Event{event("o1", "m1", followed.Opened, sec(2), 0, -1),
			event("o2", "m1", followed.Opened, sec(5), 1, -1), event("c1", "m1", followed.LinkClicked, sec(6), 1, 0),
			event("o3", "m1", followed.Opened, sec(9), 0, -1)}); err != nil {
			t.Fatal(err)
		}
		ann, bob := alert(alerts.FirstOpenKey("m1", 0), "rep@contoso.com", sec(2)), alert(alerts.FirstOpenKey("m1", 1), "rep@contoso.com", sec(5))
		click := alert("event:c1", "rep@contoso.com", sec(6))
		ann.MessageID, bob.MessageID, click.MessageID, click.Kind, click.URL = "m1", "m1", "m1", alerts.LinkClicked, "https://example.com/a"
		stored, err := st.Alerts.AppendAlerts(ctx, []alerts.Alert{ann, bob, click})
		if err != nil || len(stored) != 3 {
			t.Fatalf("append: %v (err %v)", stored, err)
		}
		return st, stored[0], stored[1]
	}
	relabel := func(t *testing.T, st Stores, id string) {
		t.Helper()
		if err := st.Followed.Relabel(ctx, []followed.Relabel{{EventID: id, Reason: "PREFETCH", Rule: "prefetch-after-send"}}); err != nil {
			t.Fatal(err)
		}
	}
	found := func(t *testing.T, st Stores, since time.Time) []string {
		t.Helper()
		ws, err := st.Alerts.RelabelledAlerts(ctx, since, 10)
		if err != nil {
			t.Fatal(err)
		}
		out := []string{}
		for _, w := range ws {
			out = append(out, fmt.Sprintf("%s %s %s", w.Alert.ID, w.Alert.Key, w.Reason))
		}
		return out
	}
	withdrawal := func(w alerts.Withdrawal, id string) alerts.Withdrawal {
		w.By = alerts.Alert{ID: id, Key: "withdrawn:" + w.Alert.ID, Owner: w.Alert.Owner, Kind: alerts.Withdrawn, At: w.Alert.At,
			MessageID: w.Alert.MessageID, Subject: w.Alert.Subject, Recipient: w.Alert.Recipient, Withdraws: w.Alert.ID, Machine: w.Reason}
		return w
	}

	t.Run("which alerts are found", func(t *testing.T) {
		for _, tt := range []struct {
			name     string
			relabels []string
			since    time.Time
			want     []string
		}{
			{"no open relabelled: none", nil, t0, []string{}},
			{"ann's alerted open relabelled: hers", []string{"o1"}, t0, []string{"id-first_open:m1:0 first_open:m1:0 PREFETCH"}},
			{"before since: none", []string{"o1"}, sec(3), []string{}},
			{"an open that was not the alerted one: none", []string{"o3"}, t0, []string{}},
			{"both first opens and the click, oldest first", []string{"c1", "o2", "o1"}, t0, []string{
				"id-first_open:m1:0 first_open:m1:0 PREFETCH", "id-first_open:m1:1 first_open:m1:1 PREFETCH", "id-event:c1 event:c1 PREFETCH"}},
			{"bob's click relabelled: its alert", []string{"c1"}, t0, []string{"id-event:c1 event:c1 PREFETCH"}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				st, _, _ := seed(t)
				for _, id := range tt.relabels {
					relabel(t, st, id)
				}
				if got := found(t, st, tt.since); fmt.Sprint(got) != fmt.Sprint(tt.want) {
					t.Fatalf("got  %q\nwant %q", got, tt.want)
				}
			})
		}
	})

	t.Run("withdrawn once, and the key freed for the next person's open", func(t *testing.T) {
		st, ann, bob := seed(t)
		relabel(t, st, "o1")
		ws, err := st.Alerts.RelabelledAlerts(ctx, t0, 10)
		if err != nil || len(ws) != 1 {
			t.Fatalf("found %+v (err %v)", ws, err)
		}
		w := withdrawal(ws[0], "w1")
		stored, err := st.Alerts.WithdrawAlerts(ctx, []alerts.Withdrawal{w})
		if err != nil || len(stored) != 1 || stored[0].Seq <= bob.Seq || stored[0].Withdraws != ann.ID || stored[0].Machine != "PREFETCH" {
			t.Fatalf("withdraw: %+v (err %v)", stored, err)
		}
		if again, err := st.Alerts.WithdrawAlerts(ctx, []alerts.Withdrawal{withdrawal(ws[0], "w2")}); err != nil || len(again) != 0 {
			t.Fatalf("second withdrawal stored %+v (err %v), want nothing", again, err)
		}
		if got := found(t, st, t0); len(got) != 0 {
			t.Fatalf("found after withdrawal: %q", got)
		}
		listed, err := st.Alerts.ListAlerts(ctx, alerts.AlertQuery{Owner: "rep@contoso.com", Limit: 10})
		if err != nil || len(listed) != 4 {
			t.Fatalf("list: %+v (err %v)", listed, err)
		}
		if got := listed[0]; got.Kind != alerts.Withdrawn || got.Withdraws != ann.ID || got.Machine != "PREFETCH" || got.ID != "w1" {
			t.Fatalf("newest alert %+v, want the withdrawal", got)
		}
		if got := listed[3]; got.ID != ann.ID || got.Kind != alerts.FirstOpen || got.Key == ann.Key {
			t.Fatalf("withdrawn alert %+v, want it kept under another key", got)
		}
		// Ann's open at 9s is now her first by a person, and nothing announces it yet.
		opens, err := st.Alerts.UnannouncedFirstOpens(ctx, t0, 10)
		if err != nil || len(opens) != 1 || opens[0].MessageID != "m1" || opens[0].Recipient != 0 || !opens[0].At.Equal(sec(9)) {
			t.Fatalf("unannounced after withdrawal: %+v (err %v)", opens, err)
		}
	})

	t.Run("a click alert is withdrawn once, and found no more", func(t *testing.T) {
		st, _, _ := seed(t)
		relabel(t, st, "c1")
		ws, err := st.Alerts.RelabelledAlerts(ctx, t0, 10)
		if err != nil || len(ws) != 1 || ws[0].Alert.Kind != alerts.LinkClicked {
			t.Fatalf("found %+v (err %v)", ws, err)
		}
		stored, err := st.Alerts.WithdrawAlerts(ctx, []alerts.Withdrawal{withdrawal(ws[0], "w1")})
		if err != nil || len(stored) != 1 || stored[0].Withdraws != ws[0].Alert.ID || stored[0].URL != "" {
			t.Fatalf("withdraw: %+v (err %v)", stored, err)
		}
		if again, err := st.Alerts.WithdrawAlerts(ctx, []alerts.Withdrawal{withdrawal(ws[0], "w2")}); err != nil || len(again) != 0 {
			t.Fatalf("second withdrawal stored %+v (err %v), want nothing", again, err)
		}
		if got := found(t, st, t0); len(got) != 0 {
			t.Fatalf("found after withdrawal: %q", got)
		}
	})

	t.Run("concurrent withdrawals of one alert store one", func(t *testing.T) {
		st, _, _ := seed(t)
		relabel(t, st, "o1")
		ws, err := st.Alerts.RelabelledAlerts(ctx, t0, 10)
		if err != nil || len(ws) != 1 {
			t.Fatalf("found %+v (err %v)", ws, err)
		}
		var mu sync.Mutex
		total := 0
		var wg sync.WaitGroup
		for i := range 6 {
			wg.Go(func() {
				stored, err := st.Alerts.WithdrawAlerts(ctx, []alerts.Withdrawal{withdrawal(ws[0], fmt.Sprint("w", i))})
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				total += len(stored)
				mu.Unlock()
			})
		}
		wg.Wait()
		if total != 1 {
			t.Fatalf("%d withdrawals stored, want 1", total)
		}
	})
}
