package server_test

import (
	"net/http"
	"testing"

	"github.com/engage-email/engage/alerts"
)

// TestAlertsWithdrawnWhenTheirEventWasAMachine: a client opens and clicks (each alerted at once as a
// person's), then follows the invisible honeypot link, which only machines do. Its open and click are
// relabelled a scanner's, the salesperson is told over the same subscription that both alerts no longer
// stand, and the recipient's real first open, when it comes, is alerted again.
func TestAlertsWithdrawnWhenTheirEventWasAMachine(t *testing.T) {
	// A click within seconds of sending is a scanner's by the built-in rules; here the window is cut so
	// that only the honeypot tells.
	e := startLabelled(t, rulesWithWindows(t, map[string]string{"click_after_send": "1ms"}))
	// From the start of the log: a subscription from "now" could begin after the first alert.
	alertsOf := subscribeAlerts(t, e.engage, "rep@contoso.com", alerts.EncodeCursor(0))
	e.mustGQL(t, "rep@contoso.com", `mutation { setAlertPreferences(input: {linkClicked: true}) { linkClicked } }`, nil, nil)
	m := e.follow(t, "ann@fabrikam.com")

	const scanner = "198.51.100.4"
	hit(t, "GET", m.pixels[0], scanner, chromeUA)
	open := alertsOf.next(t)
	if open.Kind != "FIRST_OPEN" || open.Message.ID != m.id || open.Recipient == nil || *open.Recipient != "ann@fabrikam.com" {
		t.Fatalf("first alert %+v, want ann's first open", open)
	}
	hit(t, "GET", m.links[0][0], scanner, chromeUA)
	click := alertsOf.next(t)
	if click.Kind != "LINK_CLICKED" || click.URL == nil || *click.URL != "https://contoso.example/offer" {
		t.Fatalf("second alert %+v, want the click", click)
	}
	if res := hit(t, "GET", m.honeypt[0], scanner, chromeUA); res.StatusCode != http.StatusFound {
		t.Fatalf("honeypot answered %d", res.StatusCode)
	}
	withdrawn := map[string]alertOut{}
	for range 2 {
		w := alertsOf.next(t)
		if w.Kind != "ALERT_WITHDRAWN" || w.Withdraws == nil || w.MachineReason == nil || *w.MachineReason != "SECURITY_SCANNER" ||
			w.Message.ID != m.id || w.Recipient == nil || *w.Recipient != "ann@fabrikam.com" {
			t.Fatalf("alert %+v, want a withdrawal", w)
		}
		withdrawn[*w.Withdraws] = w
	}
	if w, ok := withdrawn[open.ID]; !ok || !w.At.Equal(open.At) {
		t.Fatalf("withdrawals %+v, want one of the first open %s", withdrawn, open.ID)
	}
	if w, ok := withdrawn[click.ID]; !ok || w.URL == nil || *w.URL != *click.URL {
		t.Fatalf("withdrawals %+v, want one of the click %s", withdrawn, click.ID)
	}

	// Ann herself opens from her own client: her first open by a person is alerted.
	hit(t, "GET", m.pixels[0], "203.0.113.9", outlookUA)
	again := alertsOf.next(t)
	if again.Kind != "FIRST_OPEN" || again.ID == open.ID || again.Recipient == nil || *again.Recipient != "ann@fabrikam.com" ||
		again.Device == nil || again.Device.Client != "Outlook" {
		t.Fatalf("alert %+v, want ann's own first open", again)
	}

	// The listing keeps all five, newest first; the alerts taken back are still there to be named.
	var out struct {
		Alerts struct{ Edges []struct{ Node alertOut } }
	}
	e.mustGQL(t, "rep@contoso.com", `{ alerts { edges { node { `+alertFields+` } } } }`, nil, &out)
	var kinds []string
	for _, ed := range out.Alerts.Edges {
		kinds = append(kinds, ed.Node.Kind)
	}
	if len(kinds) != 5 || kinds[0] != "FIRST_OPEN" || kinds[1] != "ALERT_WITHDRAWN" || kinds[2] != "ALERT_WITHDRAWN" ||
		kinds[3] != "LINK_CLICKED" || kinds[4] != "FIRST_OPEN" || out.Alerts.Edges[4].Node.ID != open.ID {
		t.Fatalf("listing %v", kinds)
	}
}
