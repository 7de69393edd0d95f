package server_test

import (
	"net/http"
	"testing"
)

// TestFirstOpenAlertWithdrawnWhenTheOpenWasAMachine: a client opens (alerted at once as a person's
// first open), then follows the invisible honeypot link, which only machines do. The open is relabelled
// a scanner's, the salesperson is told over the same subscription that the first alert no longer
// stands, and the recipient's real first open, when it comes, is alerted again.
func TestFirstOpenAlertWithdrawnWhenTheOpenWasAMachine(t *testing.T) {
	e := startLabelled(t, nil)
	alertsOf := subscribeAlerts(t, e.engage, "rep@contoso.com", "")
	m := e.follow(t, "ann@fabrikam.com")

	const scanner = "198.51.100.4"
	hit(t, "GET", m.pixels[0], scanner, chromeUA)
	first := alertsOf.next(t)
	if first.Kind != "FIRST_OPEN" || first.Message.ID != m.id || first.Recipient == nil || *first.Recipient != "ann@fabrikam.com" {
		t.Fatalf("first alert %+v, want ann's first open", first)
	}
	if res := hit(t, "GET", m.honeypt[0], scanner, chromeUA); res.StatusCode != http.StatusFound {
		t.Fatalf("honeypot answered %d", res.StatusCode)
	}
	withdrawn := alertsOf.next(t)
	if withdrawn.Kind != "OPEN_WITHDRAWN" || withdrawn.Withdraws == nil || *withdrawn.Withdraws != first.ID ||
		withdrawn.MachineReason == nil || *withdrawn.MachineReason != "SECURITY_SCANNER" || withdrawn.Message.ID != m.id ||
		withdrawn.Recipient == nil || *withdrawn.Recipient != "ann@fabrikam.com" || !withdrawn.At.Equal(first.At) {
		t.Fatalf("second alert %+v, want the withdrawal of %s", withdrawn, first.ID)
	}

	// Ann herself opens from her own client: her first open by a person is alerted.
	hit(t, "GET", m.pixels[0], "203.0.113.9", outlookUA)
	again := alertsOf.next(t)
	if again.Kind != "FIRST_OPEN" || again.ID == first.ID || again.Recipient == nil || *again.Recipient != "ann@fabrikam.com" ||
		again.Device == nil || again.Device.Client != "Outlook" {
		t.Fatalf("third alert %+v, want ann's own first open", again)
	}

	// The listing keeps all three, newest first; the withdrawn alert is still there to be named.
	var out struct {
		Alerts struct{ Edges []struct{ Node alertOut } }
	}
	e.mustGQL(t, "rep@contoso.com", `{ alerts { edges { node { `+alertFields+` } } } }`, nil, &out)
	var kinds []string
	for _, ed := range out.Alerts.Edges {
		kinds = append(kinds, ed.Node.Kind)
	}
	if len(kinds) != 3 || kinds[0] != "FIRST_OPEN" || kinds[1] != "OPEN_WITHDRAWN" || kinds[2] != "FIRST_OPEN" ||
		out.Alerts.Edges[2].Node.ID != first.ID {
		t.Fatalf("listing %v", kinds)
	}
}
