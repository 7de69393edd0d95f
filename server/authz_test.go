package server_test

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"
	"time"
)

// access is what a role gets from an operation: "ok" or an error code.
type access struct{ anon, repA, repB, admin string }

const ok = "ok"

var (
	signedIn  = access{"UNAUTHENTICATED", ok, ok, ok}
	adminOnly = access{"UNAUTHENTICATED", "FORBIDDEN", "FORBIDDEN", ok}
	ownerOnly = access{"UNAUTHENTICATED", ok, "NOT_FOUND", ok} // on rep A's message; admins see all
	// ownOnly is for what is personal to rep A (reminders): admins see it as absent too.
	ownOnly = access{"UNAUTHENTICATED", ok, "NOT_FOUND", "NOT_FOUND"}
)

// matrixEntry is one operation, written against a fresh Engage where rep A has sent message $msg and
// set reminder $reminder on it.
type matrixEntry struct {
	kind  string // query, mutation, subscription
	query string
	want  access
}

func authzMatrix() map[string]matrixEntry {
	q := func(query string, want access) matrixEntry { return matrixEntry{"query", query, want} }
	m := func(query string, want access) matrixEntry { return matrixEntry{"mutation", query, want} }
	s := func(query string, want access) matrixEntry { return matrixEntry{"subscription", query, want} }
	return map[string]matrixEntry{
		// followed
		"message":           q(`query($msg: ID!) { message(id: $msg) { id } }`, ownerOnly),
		"messages":          q(`{ messages { edges { node { id } } } }`, signedIn),
		"engagementSummary": q(`{ engagementSummary { followedEmails } }`, signedIn),
		"followMessage": m(`mutation { followMessage(input: {subject: "s", html: "<p>x</p>", recipients: [{email: "z@fabrikam.com"}]}) { id } }`,
			signedIn),
		"me":    q(`{ me { email } }`, signedIn),
		"ticks": s(`subscription { ticks(count: 1) }`, signedIn),
		// consent
		"engagementSettings":       q(`{ engagementSettings { enabled } }`, signedIn),
		"followability":            q(`{ followability(recipients: ["a@fabrikam.com"]) { allowed } }`, signedIn),
		"followPreferenceHistory":  q(`{ followPreferenceHistory(target: "fabrikam.com") { at } }`, adminOnly),
		"auditLog":                 q(`{ auditLog { edges { cursor } } }`, adminOnly),
		"recipientData":            q(`{ recipientData(email: "a@fabrikam.com") { email } }`, adminOnly),
		"updateEngagementSettings": m(`mutation { updateEngagementSettings(input: {retentionDays: 30}) { retentionDays } }`, adminOnly),
		"setFollowPreference":      m(`mutation { setFollowPreference(target: "x.example", preference: ALLOW) { at } }`, adminOnly),
		"importFollowPreferences": m(`mutation { importFollowPreferences(csv: "email_or_domain,preference\nx.example,ALLOW\n") { imported } }`,
			adminOnly),
		"liftSuppression": m(`mutation { liftSuppression(email: "a@fabrikam.com") }`,
			access{"UNAUTHENTICATED", "FORBIDDEN", "FORBIDDEN", "NOT_FOUND"}), // nobody is suppressed
		"retryFollow":     m(`mutation($msg: ID!) { retryFollow(id: $msg) { id } }`, ownerOnly),
		"forgetRecipient": m(`mutation { forgetRecipient(email: "a@fabrikam.com") { email } }`, adminOnly),
		// alerts
		"alerts":              q(`{ alerts { edges { cursor } } }`, signedIn),
		"reminders":           q(`{ reminders { id } }`, signedIn),
		"alertPreferences":    q(`{ alertPreferences { firstOpen } }`, signedIn),
		"setReminder":         m(`mutation($msg: ID!, $at: Time!) { setReminder(messageId: $msg, kind: NO_REPLY_BY, at: $at) { id } }`, ownOnly),
		"cancelReminder":      m(`mutation($reminder: ID!) { cancelReminder(id: $reminder) { id } }`, ownOnly),
		"markAlertsRead":      m(`mutation { markAlertsRead(ids: ["no-such-alert"]) }`, signedIn),
		"setAlertPreferences": m(`mutation { setAlertPreferences(input: {firstOpen: true}) { firstOpen } }`, signedIn),
		// recommend
		"sendTimeRecommendation":  q(`{ sendTimeRecommendation(recipients: ["a@fabrikam.com"]) { at } }`, signedIn),
		"templates":               q(`{ templates { id } }`, signedIn),
		"templateRecommendations": q(`{ templateRecommendations(category: "intro") { recommended } }`, signedIn),
		"createTemplate":          m(`mutation { createTemplate(input: {name: "n", html: "<p>x</p>", category: "intro"}) { id } }`, signedIn),
		"updateTemplate": m(`mutation($template: ID!) { updateTemplate(id: $template, input: {name: "n2", html: "<p>y</p>", category: "intro"}) { id } }`,
			access{"UNAUTHENTICATED", ok, "FORBIDDEN", ok}),
		// The admin deletes rep A's template before A tries, so A finds it gone.
		"deleteTemplate":      m(`mutation($template: ID!) { deleteTemplate(id: $template) }`, access{"UNAUTHENTICATED", "NOT_FOUND", "FORBIDDEN", ok}),
		"recordOutcome":       m(`mutation($msg: ID!) { recordOutcome(messageId: $msg, outcome: WON) }`, ownOnly),
		"subscription:alerts": s(`subscription { alerts { id } }`, signedIn),
		// delivery: only the owner sends (admins too get NOT_FOUND); nothing is scheduled in this setup.
		// A file only travels in a multipart request (server/attachments_test.go checks who may add one
		// there); as JSON the Upload is refused before any resolver runs, for everyone alike.
		"addAttachment": m(`mutation($msg: ID!) { addAttachment(messageId: $msg, file: "x", followed: true) { id } }`,
			access{"BAD_USER_INPUT", "BAD_USER_INPUT", "BAD_USER_INPUT", "BAD_USER_INPUT"}),
		"removeAttachment":    m(`mutation { removeAttachment(id: "nope") { id } }`, access{"UNAUTHENTICATED", "NOT_FOUND", "NOT_FOUND", "NOT_FOUND"}),
		"sendMessage":         m(`mutation($msg: ID!) { sendMessage(id: $msg) { id } }`, ownOnly),
		"cancelScheduledSend": m(`mutation($msg: ID!) { cancelScheduledSend(id: $msg) { id } }`, access{"UNAUTHENTICATED", "BAD_USER_INPUT", "NOT_FOUND", "NOT_FOUND"}),
		"rescheduleSend":      m(`mutation($msg: ID!, $at: Time!) { rescheduleSend(id: $msg, at: $at) { id } }`, access{"UNAUTHENTICATED", "BAD_USER_INPUT", "NOT_FOUND", "NOT_FOUND"}),
		"outbox":              q(`{ outbox { id } }`, signedIn),
		// feed: the response feed is for admins (and integrations, see server/feed_test.go); webhooks for admins.
		"responses":        q(`{ responses { cursor } }`, adminOnly),
		"webhookEndpoints": q(`{ webhookEndpoints { id } }`, adminOnly),
		"webhookDeliveries": q(`{ webhookDeliveries(endpointId: "nope") { id } }`,
			access{"UNAUTHENTICATED", "FORBIDDEN", "FORBIDDEN", "NOT_FOUND"}),
		"registerWebhook": m(`mutation { registerWebhook(input: {url: "http://127.0.0.1:9/hook", secret: "0123456789abcdef0123456789abcdef"}) { id } }`,
			adminOnly),
		"updateWebhook": m(`mutation { updateWebhook(id: "nope", input: {enable: true}) { id } }`,
			access{"UNAUTHENTICATED", "FORBIDDEN", "FORBIDDEN", "NOT_FOUND"}),
		"deleteWebhook": m(`mutation { deleteWebhook(id: "nope") }`, access{"UNAUTHENTICATED", "FORBIDDEN", "FORBIDDEN", "NOT_FOUND"}),
	}
}

// operations lists every root field of the schema by introspection, subscriptions prefixed, so that a
// new operation without a matrix entry fails the test.
func (e *engage) operations(t *testing.T) map[string]string {
	t.Helper()
	var out struct {
		Schema struct {
			QueryType, MutationType, SubscriptionType struct{ Fields []struct{ Name string } }
		} `json:"__schema"`
	}
	e.mustGQL(t, repA, `{ __schema { queryType { fields { name } } mutationType { fields { name } } subscriptionType { fields { name } } } }`, nil, &out)
	ops := map[string]string{}
	for _, f := range out.Schema.QueryType.Fields {
		ops[f.Name] = "query"
	}
	for _, f := range out.Schema.MutationType.Fields {
		ops[f.Name] = "mutation"
	}
	for _, f := range out.Schema.SubscriptionType.Fields {
		name := f.Name
		if _, clash := ops[name]; clash {
			name = "subscription:" + name
		}
		ops[name] = "subscription"
	}
	return ops
}

func TestAuthorizationMatrix(t *testing.T) {
	matrix := authzMatrix()
	ops := start(t).operations(t)
	var names []string
	for name, kind := range ops {
		entry, ok := matrix[name]
		if !ok {
			t.Errorf("%s %s has no entry in the authorization matrix", kind, name)
			continue
		}
		if entry.kind != kind {
			t.Errorf("%s is a %s in the schema, a %s in the matrix", name, kind, entry.kind)
		}
		names = append(names, name)
	}
	for name := range matrix {
		if _, ok := ops[name]; !ok {
			t.Errorf("the matrix names %s, which the schema no longer has", name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		entry := matrix[name]
		t.Run(name, func(t *testing.T) {
			e := start(t)
			msg := e.follow(t, repA, false, offerHTML, "ann@fabrikam.com").FollowMessage.ID
			var rem struct{ SetReminder struct{ ID string } }
			at := time.Now().Add(30 * 24 * time.Hour).UTC().Format(time.RFC3339)
			e.mustGQL(t, repA, `mutation($m: ID!, $at: Time!) { setReminder(messageId: $m, kind: ANYWAY, at: $at) { id } }`,
				map[string]any{"m": msg, "at": at}, &rem)
			var tpl struct{ CreateTemplate struct{ ID string } }
			e.mustGQL(t, repA, `mutation { createTemplate(input: {name: "mine", html: "<p>x</p>", category: "intro"}) { id } }`, nil, &tpl)
			vars := map[string]any{}
			if strings.Contains(entry.query, "$template") {
				vars["template"] = tpl.CreateTemplate.ID
			}
			if strings.Contains(entry.query, "$msg") {
				vars["msg"] = msg
			}
			if strings.Contains(entry.query, "$at") {
				vars["at"] = at
			}
			if strings.Contains(entry.query, "$reminder") {
				vars["reminder"] = rem.SetReminder.ID
			}
			// Admins go before rep A, so that what A changes (a reminder set or cancelled) does not decide theirs.
			roles := []struct{ user, want string }{{"", entry.want.anon}, {repB, entry.want.repB}, {adminUser, entry.want.admin}, {repA, entry.want.repA}}
			for _, role := range roles {
				got := ok
				if entry.kind == "subscription" {
					got = e.subscribeOutcome(t, role.user, entry.query)
				} else if r := e.gql(t, role.user, entry.query, vars, nil); len(r.Errors) > 0 {
					got = r.code()
					if got != role.want {
						t.Logf("%q: %s", role.user, r.Errors[0].Message)
					}
				}
				if got != role.want {
					t.Errorf("%q: got %s, want %s", role.user, got, role.want)
				}
			}
		})
	}
}

// subscribeOutcome subscribes over a real websocket as user and reports "ok", UNAUTHENTICATED (the
// connection refused) or the code of the error the subscription answered. A ticks(count: 1)
// subscription rides along as a marker: an operation that fails does so before the tick arrives.
func (e *engage) subscribeOutcome(t *testing.T, user, query string) string {
	t.Helper()
	c, _, err := dialWS(t, e, "graphql-transport-ws", "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	init, _ := json.Marshal(map[string]string{"X-Engage-User": user})
	if user == "" {
		init = []byte(`{}`)
	}
	c.WriteJSON(wsMessage{Type: "connection_init", Payload: init})
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var ack wsMessage
	if err := c.ReadJSON(&ack); err != nil || ack.Type != "connection_ack" {
		return "UNAUTHENTICATED"
	}
	payload, _ := json.Marshal(map[string]string{"query": query})
	c.WriteJSON(wsMessage{ID: "op", Type: "subscribe", Payload: payload})
	c.WriteJSON(wsMessage{ID: "marker", Type: "subscribe", Payload: json.RawMessage(`{"query":"subscription { ticks(count: 1) }"}`)})
	for {
		m := readWS(t, c)
		switch {
		case m.ID == "op" && m.Type == "error":
			var errs []struct{ Extensions map[string]any }
			json.Unmarshal(m.Payload, &errs)
			if len(errs) > 0 {
				if code, _ := errs[0].Extensions["code"].(string); code != "" {
					return code
				}
			}
			return "ERROR"
		case m.ID == "marker" && m.Type == "next":
			return ok
		}
	}
}
