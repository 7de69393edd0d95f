package server_test

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

type interactionsOut struct {
	Message struct {
		Kpis         struct{ Replies int }
		Interactions struct {
			Edges []struct {
				Node struct {
					Kind      string
					Recipient *struct{ Email string }
				}
			}
		}
	}
}

// interactions waits until the message has n interactions (the processor runs in the background) and
// returns them with the reply count.
func (e *engage) interactions(t *testing.T, id string, n int) interactionsOut {
	t.Helper()
	var out interactionsOut
	deadline := time.Now().Add(10 * time.Second)
	for {
		out = interactionsOut{}
		e.mustGQL(t, repA, `query($id: ID!) { message(id: $id) { kpis { replies } interactions { edges { node { kind recipient { email } } } } } }`,
			map[string]any{"id": id}, &out)
		if len(out.Message.Interactions.Edges) >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The counters commit with the events, but the first read may have taken them before the commit.
	out = interactionsOut{}
	e.mustGQL(t, repA, `query($id: ID!) { message(id: $id) { kpis { replies } interactions { edges { node { kind recipient { email } } } } } }`,
		map[string]any{"id": id}, &out)
	return out
}

// eventually polls cond (the processor applies a bounce's effects after recording it) for up to 10 seconds.
func eventually(cond func() bool) bool {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return false
}

func postForm(t *testing.T, target string, form url.Values) *http.Response {
	t.Helper()
	res, err := noRedirect.PostForm(target, form)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res
}

type followabilityOut struct {
	Followability struct {
		Allowed []string
		Blocked []struct{ Email, Reason string }
	}
}

func TestInboundRepliesAutoRepliesAndBouncesFromTheOutbox(t *testing.T) {
	e := start(t)
	alerts := subscribeAlerts(t, e, repA, "")
	m := e.follow(t, repA, true, offerHTML, "ann@fabrikam.com", "bob@fabrikam.com").FollowMessage
	e.mustGQL(t, repA, `mutation($id: ID!) { sendMessage(id: $id) { id } }`, map[string]any{"id": m.ID}, nil)
	var box outboxOut
	e.mustGQL(t, repA, `{ outbox { id to } }`, nil, &box)
	mail := map[string]string{}
	for _, o := range box.Outbox {
		mail[o.To[0]] = o.ID
	}
	if len(mail) != 2 {
		t.Fatalf("outbox %+v", box.Outbox)
	}
	res := get(t, "GET", e.URL+"/outbox", "Mozilla/5.0")
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, action := range []string{"reply", "auto-reply", "bounce"} {
		if !strings.Contains(string(page), `action="/outbox/`+mail["ann@fabrikam.com"]+`/`+action+`"`) {
			t.Fatalf("the outbox page has no %s form:\n%s", action, page)
		}
	}

	t.Run("bad input", func(t *testing.T) {
		for _, c := range []struct {
			name, path string
			form       url.Values
			want       int
		}{
			{"not a recipient", "/outbox/" + mail["ann@fabrikam.com"] + "/reply", url.Values{"as": {"mallory@evil.example"}}, http.StatusBadRequest},
			{"unknown mail", "/outbox/nope/reply", nil, http.StatusNotFound},
			{"unknown action", "/outbox/" + mail["ann@fabrikam.com"] + "/forward", nil, http.StatusNotFound},
		} {
			t.Run(c.name, func(t *testing.T) {
				if res := postForm(t, e.URL+c.path, c.form); res.StatusCode != c.want {
					t.Fatalf("status %d, want %d", res.StatusCode, c.want)
				}
			})
		}
	})

	// Ann replies: a REPLIED interaction, one reply in the KPIs, and a live alert.
	if res := postForm(t, e.URL+"/outbox/"+mail["ann@fabrikam.com"]+"/reply", url.Values{"text": {"Sounds good."}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("reply: %d", res.StatusCode)
	}
	got := e.interactions(t, m.ID, 1)
	if n := got.Message.Interactions.Edges; len(n) != 1 || n[0].Node.Kind != "REPLIED" || n[0].Node.Recipient == nil ||
		n[0].Node.Recipient.Email != "ann@fabrikam.com" || got.Message.Kpis.Replies != 1 {
		t.Fatalf("after ann's reply: %+v", got)
	}
	if a := alerts.next(t); a.Kind != "REPLY_RECEIVED" || a.Message.ID != m.ID || a.Recipient == nil || *a.Recipient != "ann@fabrikam.com" {
		t.Fatalf("alert %+v", a)
	}

	// Bob's out-of-office: AUTO_REPLIED, which is no reply.
	if res := postForm(t, e.URL+"/outbox/"+mail["bob@fabrikam.com"]+"/auto-reply", nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("auto-reply: %d", res.StatusCode)
	}
	got = e.interactions(t, m.ID, 2)
	if n := got.Message.Interactions.Edges; len(n) != 2 || n[0].Node.Kind != "AUTO_REPLIED" || n[0].Node.Recipient.Email != "bob@fabrikam.com" ||
		got.Message.Kpis.Replies != 1 {
		t.Fatalf("after bob's auto-reply: %+v", got)
	}

	// Bob's address bounces hard: BOUNCED, suppressed, and no longer followable until an admin lifts it.
	if res := postForm(t, e.URL+"/outbox/"+mail["bob@fabrikam.com"]+"/bounce", url.Values{"severity": {"hard"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("bounce: %d", res.StatusCode)
	}
	got = e.interactions(t, m.ID, 3)
	if n := got.Message.Interactions.Edges; len(n) != 3 || n[0].Node.Kind != "BOUNCED" || n[0].Node.Recipient.Email != "bob@fabrikam.com" ||
		got.Message.Kpis.Replies != 1 {
		t.Fatalf("after bob's bounce: %+v", got)
	}
	followability := func() followabilityOut {
		var f followabilityOut
		e.mustGQL(t, repA, `query($r: [String!]!) { followability(recipients: $r) { allowed blocked { email reason } } }`,
			map[string]any{"r": []string{"ann@fabrikam.com", "bob@fabrikam.com"}}, &f)
		return f
	}
	var f followabilityOut
	eventually(func() bool { f = followability(); return len(f.Followability.Blocked) > 0 })
	if f := f.Followability; len(f.Allowed) != 1 || f.Allowed[0] != "ann@fabrikam.com" || len(f.Blocked) != 1 ||
		f.Blocked[0].Email != "bob@fabrikam.com" || f.Blocked[0].Reason != "SUPPRESSED_BOUNCE" {
		t.Fatalf("followability after a hard bounce: %+v", f)
	}
	// Nor may mail be sent to the address: it would only bounce again.
	var again followedOut
	e.mustGQL(t, repA, followMutation, map[string]any{"in": map[string]any{"subject": "Once more", "html": "<p>Hi</p>",
		"recipients": []map[string]any{{"email": "bob@fabrikam.com"}}}}, &again)
	if r := e.gql(t, repA, `mutation($id: ID!) { sendMessage(id: $id) { id } }`, map[string]any{"id": again.FollowMessage.ID}, nil); r.code() != "BAD_USER_INPUT" ||
		!strings.Contains(r.Errors[0].Message, "bob@fabrikam.com bounced") {
		t.Fatalf("sending to a suppressed address: %+v", r)
	}
	if r := e.gql(t, repA, `mutation { liftSuppression(email: "bob@fabrikam.com") }`, nil, nil); r.code() != "FORBIDDEN" {
		t.Fatalf("a salesperson lifted a suppression: %+v", r)
	}
	e.mustGQL(t, adminUser, `mutation { liftSuppression(email: "bob@fabrikam.com") }`, nil, nil)
	if r := e.gql(t, adminUser, `mutation { liftSuppression(email: "Bob@Fabrikam.com") }`, nil, nil); r.code() != "NOT_FOUND" ||
		r.Errors[0].Message != "bob@fabrikam.com is not suppressed" {
		t.Fatalf("lifting it again: %+v", r)
	}
	if f := followability().Followability; len(f.Allowed) != 2 || len(f.Blocked) != 0 {
		t.Fatalf("followability after the lift: %+v", f)
	}
}

func TestInboundSoftBouncesTurnHardAfterFiveInARow(t *testing.T) {
	e := start(t)
	m := e.follow(t, repA, true, offerHTML, "carol@fabrikam.com").FollowMessage
	e.mustGQL(t, repA, `mutation($id: ID!) { sendMessage(id: $id) { id } }`, map[string]any{"id": m.ID}, nil)
	var box outboxOut
	e.mustGQL(t, repA, `{ outbox { id } }`, nil, &box)
	var f followabilityOut
	for i := 1; i <= 5; i++ {
		if res := postForm(t, e.URL+"/outbox/"+box.Outbox[0].ID+"/bounce", url.Values{"severity": {"soft"}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("soft bounce %d: %d", i, res.StatusCode)
		}
		e.interactions(t, m.ID, i)
		read := func() bool {
			f = followabilityOut{}
			e.mustGQL(t, repA, `{ followability(recipients: ["carol@fabrikam.com"]) { allowed blocked { email reason } } }`, nil, &f)
			return len(f.Followability.Blocked) == 1
		}
		blocked := read()
		if i == 5 {
			blocked = eventually(read)
		}
		if blocked != (i == 5) {
			t.Fatalf("after %d soft bounces: %+v", i, f)
		}
	}
	if f.Followability.Blocked[0].Reason != "SUPPRESSED_BOUNCE" {
		t.Fatalf("reason %+v", f)
	}
}

func TestGraphHookHandshakeAndRejections(t *testing.T) {
	e := start(t)
	token := "Validation: Testing client application reachability <b>1</b>"
	res, err := http.Post(e.URL+"/hooks/graph?validationToken="+url.QueryEscape(token), "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || string(body) != token || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("handshake: %d %q %q", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	for _, c := range []struct {
		name, path, body string
		want             int
	}{
		{"unknown subscription is dropped", "/hooks/graph", `{"value":[{"subscriptionId":"nope","clientState":"x","resourceData":{"id":"m1"}}]}`, http.StatusAccepted},
		{"lifecycle for an unknown subscription", "/hooks/graph/lifecycle", `{"value":[{"subscriptionId":"nope","lifecycleEvent":"missed"}]}`, http.StatusAccepted},
		{"not JSON", "/hooks/graph", `{"value":[`, http.StatusBadRequest},
		{"no value", "/hooks/graph", `{}`, http.StatusBadRequest},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := http.Post(e.URL+c.path, "application/json", bytes.NewReader([]byte(c.body)))
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != c.want {
				t.Fatalf("status %d, want %d", res.StatusCode, c.want)
			}
		})
	}
	if n, err := e.DB.InboundPending(t.Context()); err != nil || n != 0 {
		t.Fatalf("rejected notifications were queued: %d %v", n, err)
	}
}
