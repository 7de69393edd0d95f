package server_test

import (
	"context"
	"io"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/engage-email/engage/alerts"
	"github.com/engage-email/engage/followed"
)

// restartAlerts starts another alerts service on e's store, as a process started after a crash would:
// its loops, the recovery sweep among them, run until the test ends.
func restartAlerts(t *testing.T, e *engage) *alerts.Service {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	svc := alerts.New(e.DB, e.DB, alerts.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := svc.Start(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); svc.Wait() })
	return svc
}

// TestAlertsLostFirstOpenRecovered: a process that dies after storing a first open and before storing
// its alert loses nothing. The open is recorded through the store alone, as the crashed recorder left
// it; the next service started sweeps it up, and the subscriber (served by another instance, which
// follows the alert tail) gets it once, however often it is swept or reported again. A machine's open
// and an owner who turned first-open alerts off are not announced.
func TestAlertsLostFirstOpenRecovered(t *testing.T) {
	ctx := context.Background()
	e := start(t)
	rep := subscribeAlerts(t, e, "rep@contoso.com", "")
	id, pixels := followFor(t, e, "rep@contoso.com", "Proposal", "ann@fabrikam.com", "bob@fabrikam.com", "cy@fabrikam.com")
	quietID, _ := followFor(t, e, "quiet@contoso.com", "Quiet", "dee@fabrikam.com")
	if r := e.gql(t, "quiet@contoso.com", `mutation { setAlertPreferences(input: {firstOpen: false}) { firstOpen } }`, nil, nil); r.code() != "" {
		t.Fatalf("preferences: %+v", r.Errors)
	}

	now := time.Now().UTC().Truncate(time.Millisecond)
	open := func(id, msg string, recipient int, at time.Time) followed.Event {
		return followed.Event{ID: id, MessageID: msg, Kind: followed.Opened, At: at, Recipient: recipient, Link: -1,
			Device: followed.Device{Type: followed.DeviceDesktop, OS: "Windows", Client: "Outlook"}}
	}
	scanner := open("scan", id, 2, now)
	scanner.Machine, scanner.Reason, scanner.Rule, scanner.Device.Client = true, "SECURITY_SCANNER", "honeypot", "Scanner"
	firsts, err := e.DB.RecordEvents(ctx, []followed.Event{open("ann-1", id, 0, now.Add(-time.Hour)), scanner,
		open("dee-1", quietID, 0, now.Add(-time.Minute))})
	if err != nil || len(firsts) != 2 {
		t.Fatalf("record: %+v, %v; want ann's and dee's first opens", firsts, err)
	}

	restarted := restartAlerts(t, e)
	got := rep.next(t)
	if got.Kind != "FIRST_OPEN" || got.Message.ID != id || got.Recipient == nil || *got.Recipient != "ann@fabrikam.com" ||
		!got.At.Equal(now.Add(-time.Hour)) || got.Device == nil || got.Device.Client != "Outlook" {
		t.Fatalf("recovered alert: %+v", got)
	}

	// Sweeping again, on either instance, and the normal path reporting late store nothing more.
	for _, svc := range []*alerts.Service{restarted, e.Alerts} {
		if n, err := svc.RecoverFirstOpens(ctx, now.Add(-24*time.Hour)); err != nil || n != 0 {
			t.Fatalf("second sweep stored %d (err %v), want 0", n, err)
		}
	}
	e.Alerts.FirstOpens(ctx, firsts)
	get(t, "GET", pixels[1], outlookUA).Body.Close()
	if next := rep.next(t); next.Recipient == nil || *next.Recipient != "bob@fabrikam.com" {
		t.Fatalf("next alert %+v, want bob's first open (and no repeat of ann's)", next)
	}

	var list struct {
		Alerts struct{ Edges []struct{ Node alertOut } }
	}
	for _, tc := range []struct {
		owner string
		want  []string
	}{
		{"rep@contoso.com", []string{"bob@fabrikam.com", "ann@fabrikam.com"}},
		{"quiet@contoso.com", nil},
	} {
		t.Run(tc.owner, func(t *testing.T) {
			list.Alerts.Edges = nil
			if r := e.gql(t, tc.owner, `{ alerts { edges { node { `+alertFields+` } } } }`, nil, &list); r.code() != "" {
				t.Fatalf("alerts: %+v", r.Errors)
			}
			var recipients []string
			for _, ed := range list.Alerts.Edges {
				recipients = append(recipients, *ed.Node.Recipient)
			}
			if !reflect.DeepEqual(recipients, tc.want) {
				t.Fatalf("alerts of %s: %v, want %v (one each, none for the scanner or an owner who turned them off)",
					tc.owner, recipients, tc.want)
			}
		})
	}

	// Switched back on, quiet is not told late of dee's open, which came while they were off; a lost
	// first open from after that is recovered.
	if r := e.gql(t, "quiet@contoso.com", `mutation { setAlertPreferences(input: {firstOpen: true}) { firstOpen } }`, nil, nil); r.code() != "" {
		t.Fatalf("preferences: %+v", r.Errors)
	}
	if n, err := e.Alerts.RecoverFirstOpens(ctx, now.Add(-24*time.Hour)); err != nil || n != 0 {
		t.Fatalf("sweep after switching back on stored %d (err %v), want none for the open from while they were off", n, err)
	}
	againID, _ := followFor(t, e, "quiet@contoso.com", "Quiet again", "eve@fabrikam.com")
	if _, err := e.DB.RecordEvents(ctx, []followed.Event{open("eve-1", againID, 0, time.Now().UTC().Truncate(time.Millisecond))}); err != nil {
		t.Fatal(err)
	}
	if n, err := e.Alerts.RecoverFirstOpens(ctx, now.Add(-24*time.Hour)); err != nil || n != 1 {
		t.Fatalf("sweep stored %d (err %v), want eve's first open", n, err)
	}
}
