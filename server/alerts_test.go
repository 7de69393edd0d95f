package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/engage-email/engage/alerts"
	"github.com/engage-email/engage/followed"
)

const alertFields = `id kind at message { id subject } recipient device { type client } url reminderId reminderKind withdraws machineReason read cursor`

type alertOut struct {
	ID            string
	Kind          string
	At            time.Time
	Message       struct{ ID, Subject string }
	Recipient     *string
	Device        *struct{ Type, Client string }
	URL           *string
	ReminderID    *string
	ReminderKind  *string
	Withdraws     *string
	MachineReason *string
	Read          bool
	Cursor        string
}

// followFor follows an individually sent message for owner and returns its id and one pixel per recipient.
func followFor(t *testing.T, e *engage, owner, subject string, recipients ...string) (string, []string) {
	t.Helper()
	var rs []map[string]any
	for _, r := range recipients {
		rs = append(rs, map[string]any{"email": r})
	}
	var out struct {
		FollowMessage struct {
			ID      string
			Renders []struct{ HTML string }
		}
	}
	r := e.gql(t, owner, `mutation($in: FollowMessageInput!) { followMessage(input: $in) { id renders { html } } }`,
		map[string]any{"in": map[string]any{"subject": subject, "html": "<p>Hello</p>", "individual": true, "recipients": rs}}, &out)
	if r.code() != "" {
		t.Fatalf("follow: %+v", r.Errors)
	}
	var pixels []string
	for _, rd := range out.FollowMessage.Renders {
		pixels = append(pixels, pixelRe.FindStringSubmatch(rd.HTML)[1])
	}
	return out.FollowMessage.ID, pixels
}

// alertClient is a real graphql-transport-ws client subscribed to alerts.
type alertClient struct {
	c *websocket.Conn
}

func subscribeAlerts(t *testing.T, e *engage, user string, since string) *alertClient {
	t.Helper()
	before := e.Alerts.Subscribers()
	c, _, err := dialWS(t, e, "graphql-transport-ws", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	init, _ := json.Marshal(map[string]string{"X-Engage-User": user})
	c.WriteJSON(wsMessage{Type: "connection_init", Payload: init})
	if m := readWS(t, c); m.Type != "connection_ack" {
		t.Fatalf("got %+v, want connection_ack", m)
	}
	vars := map[string]any{}
	if since != "" {
		vars["since"] = since
	}
	payload, _ := json.Marshal(map[string]any{"query": `subscription($since: String) { alerts(since: $since) { ` + alertFields + ` } }`,
		"variables": vars})
	c.WriteJSON(wsMessage{ID: "1", Type: "subscribe", Payload: payload})
	// A subscription from "now" sees what is published once it is registered: wait for that, so that
	// an alert the test causes next cannot come first. So does one whose cursor is ahead of the stored
	// alerts, which goes on from their end as it is registered. (A bad cursor is never registered.)
	_, bad := alerts.DecodeCursor(since)
	wait := since == "" || bad == nil
	for deadline := time.Now().Add(5 * time.Second); wait && e.Alerts.Subscribers() <= before; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the subscription of %s was not registered", user)
		}
	}
	return &alertClient{c: c}
}

// next reads the next alert frame; a frame of another type fails the test.
func (a *alertClient) next(t *testing.T) alertOut {
	t.Helper()
	m := readWS(t, a.c)
	if m.Type != "next" {
		t.Fatalf("got %s %s, want an alert", m.Type, m.Payload)
	}
	var p struct {
		Data struct{ Alerts alertOut }
	}
	if err := json.Unmarshal(m.Payload, &p); err != nil {
		t.Fatalf("decode %s: %v", m.Payload, err)
	}
	return p.Data.Alerts
}

func TestAlertsFirstOpenEndToEnd(t *testing.T) {
	e := start(t)
	rep := subscribeAlerts(t, e, "rep@contoso.com", "")
	other := subscribeAlerts(t, e, "other@contoso.com", "")
	id, pixels := followFor(t, e, "rep@contoso.com", "Proposal", "ann@fabrikam.com", "bob@fabrikam.com")

	for range 3 { // a person opening again fires nothing more
		get(t, "GET", pixels[0], outlookUA).Body.Close()
	}
	first := rep.next(t)
	if first.Kind != "FIRST_OPEN" || first.Message.ID != id || first.Message.Subject != "Proposal" ||
		first.Recipient == nil || *first.Recipient != "ann@fabrikam.com" || first.Device == nil ||
		first.Device.Client != "Outlook" || first.Read || first.Cursor == "" {
		t.Fatalf("first open alert: %+v", first)
	}
	get(t, "GET", pixels[1], outlookUA).Body.Close()
	if second := rep.next(t); second.Kind != "FIRST_OPEN" || *second.Recipient != "bob@fabrikam.com" {
		t.Fatalf("second alert %+v, want bob's first open (and no repeat of ann's)", second)
	}

	// Another salesperson's subscription carries only their own alerts.
	_, theirs := followFor(t, e, "other@contoso.com", "Theirs", "cy@northwind.com")
	get(t, "GET", theirs[0], outlookUA).Body.Close()
	if a := other.next(t); a.Message.Subject != "Theirs" {
		t.Fatalf("other's first alert is %+v", a)
	}

	// The listing, read marks and replay from a cursor.
	list := func(unread bool) []alertOut {
		var out struct {
			Alerts struct{ Edges []struct{ Node alertOut } }
		}
		r := e.gql(t, "rep@contoso.com", `query($u: Boolean) { alerts(unreadOnly: $u) { edges { node { `+alertFields+` } } } }`,
			map[string]any{"u": unread}, &out)
		if r.code() != "" {
			t.Fatalf("alerts: %+v", r.Errors)
		}
		var as []alertOut
		for _, ed := range out.Alerts.Edges {
			as = append(as, ed.Node)
		}
		return as
	}
	all := list(false)
	if len(all) != 2 || all[0].ID == first.ID || all[1].ID != first.ID {
		t.Fatalf("listing (newest first): %+v", all)
	}
	var marked struct{ MarkAlertsRead int }
	e.gql(t, "other@contoso.com", `mutation($ids: [ID!]!) { markAlertsRead(ids: $ids) }`, map[string]any{"ids": []string{first.ID}}, &marked)
	if marked.MarkAlertsRead != 0 {
		t.Fatalf("another user marked %d of rep's alerts", marked.MarkAlertsRead)
	}
	e.gql(t, "rep@contoso.com", `mutation($ids: [ID!]!) { markAlertsRead(ids: $ids) }`, map[string]any{"ids": []string{first.ID}}, &marked)
	if unread := list(true); marked.MarkAlertsRead != 1 || len(unread) != 1 || unread[0].ID != all[0].ID {
		t.Fatalf("marked %d, unread %+v", marked.MarkAlertsRead, unread)
	}
	replay := subscribeAlerts(t, e, "rep@contoso.com", first.Cursor)
	if a := replay.next(t); a.ID != all[0].ID {
		t.Fatalf("replay after the first alert gave %+v, want bob's", a)
	}
}

// TestAlertsCursorAheadGoesOnFromTheEnd subscribes with a cursor past every stored alert (another
// Engage's, or alerts since erased): the next alert still arrives.
func TestAlertsCursorAheadGoesOnFromTheEnd(t *testing.T) {
	e := start(t)
	rep := subscribeAlerts(t, e, "rep@contoso.com", alerts.EncodeCursor(999_999))
	id, pixels := followFor(t, e, "rep@contoso.com", "Ahead", "ann@fabrikam.com")
	get(t, "GET", pixels[0], outlookUA).Body.Close()
	if a := rep.next(t); a.Kind != "FIRST_OPEN" || a.Message.ID != id {
		t.Fatalf("alert %+v, want the first open of %s", a, id)
	}
}

func TestAlertsBadInput(t *testing.T) {
	e := start(t)
	id, _ := followFor(t, e, "rep@contoso.com", "Proposal", "ann@fabrikam.com")
	t.Run("subscribing without credentials closes with 4401", func(t *testing.T) {
		for _, payload := range []string{`{}`, `{"X-Engage-User":"not an address"}`} {
			c, _, err := dialWS(t, e, "graphql-transport-ws", "")
			if err != nil {
				t.Fatal(err)
			}
			c.WriteJSON(wsMessage{Type: "connection_init", Payload: json.RawMessage(payload)})
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			for {
				_, _, err := c.ReadMessage()
				if err == nil {
					continue
				}
				if !websocket.IsCloseError(err, 4401) {
					t.Fatalf("payload %s: err = %v, want close 4401", payload, err)
				}
				break
			}
			c.Close()
		}
	})
	t.Run("a bad cursor is a clear error", func(t *testing.T) {
		for _, since := range []string{"nope", "YWxlcnQ6LTE", "YWxlcnQ6MDE"} { // "alert:-1", "alert:01"
			c := subscribeAlerts(t, e, "rep@contoso.com", since)
			m := readWS(t, c.c)
			if (m.Type != "next" && m.Type != "error") || !strings.Contains(string(m.Payload), "is not an alert cursor") ||
				!strings.Contains(string(m.Payload), "BAD_USER_INPUT") {
				t.Fatalf("since %q: %s %s", since, m.Type, m.Payload)
			}
		}
		r := e.gql(t, "rep@contoso.com", `{ alerts(after: "nope") { edges { cursor } } }`, nil, nil)
		if r.code() != "BAD_USER_INPUT" {
			t.Fatalf("listing after a bad cursor: %+v", r.Errors)
		}
	})
	tests := []struct {
		name, user, query string
		vars              map[string]any
		code              string
	}{
		{"reminder in the past", "rep@contoso.com", `mutation($m: ID!, $at: Time!) { setReminder(messageId: $m, kind: ANYWAY, at: $at) { id } }`,
			map[string]any{"m": id, "at": time.Now().Add(-time.Minute)}, "BAD_USER_INPUT"},
		{"reminder years ahead", "rep@contoso.com", `mutation($m: ID!, $at: Time!) { setReminder(messageId: $m, kind: ANYWAY, at: $at) { id } }`,
			map[string]any{"m": id, "at": time.Now().Add(3 * 365 * 24 * time.Hour)}, "BAD_USER_INPUT"},
		{"reminder on someone else's message", "other@contoso.com", `mutation($m: ID!, $at: Time!) { setReminder(messageId: $m, kind: NO_REPLY_BY, at: $at) { id } }`,
			map[string]any{"m": id, "at": time.Now().Add(time.Hour)}, "NOT_FOUND"},
		{"reminder on no message", "rep@contoso.com", `mutation($at: Time!) { setReminder(messageId: "nope", kind: NO_REPLY_BY, at: $at) { id } }`,
			map[string]any{"at": time.Now().Add(time.Hour)}, "NOT_FOUND"},
		{"cancel an unknown reminder", "rep@contoso.com", `mutation { cancelReminder(id: "nope") { id } }`, nil, "NOT_FOUND"},
		{"mark nothing read", "rep@contoso.com", `mutation { markAlertsRead(ids: []) }`, nil, "BAD_USER_INPUT"},
		{"negative page", "rep@contoso.com", `{ alerts(first: -1) { edges { cursor } } }`, nil, "BAD_USER_INPUT"},
		{"anonymous", "", `{ alertPreferences { firstOpen } }`, nil, "UNAUTHENTICATED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.gql(t, tt.user, tt.query, tt.vars, nil)
			if r.code() != tt.code || r.status >= 500 {
				t.Fatalf("status %d, errors %+v, want %s", r.status, r.Errors, tt.code)
			}
		})
	}
}

type reminderOut struct {
	ID, Kind, State string
	Reason          *string
}

func setReminder(t *testing.T, e *engage, messageID, kind string, at time.Time) reminderOut {
	t.Helper()
	var out struct{ SetReminder reminderOut }
	r := e.gql(t, "rep@contoso.com", `mutation($m: ID!, $k: ReminderKind!, $at: Time!) { setReminder(messageId: $m, kind: $k, at: $at) { id kind state reason } }`,
		map[string]any{"m": messageID, "k": kind, "at": at}, &out)
	if r.code() != "" || out.SetReminder.State != "PENDING" {
		t.Fatalf("setReminder: %+v %+v", r.Errors, out)
	}
	return out.SetReminder
}

// settled waits (polling the API, up to 10s) until reminder id is no longer pending.
func settled(t *testing.T, e *engage, messageID, id string) reminderOut {
	t.Helper()
	for range 200 {
		var out struct{ Reminders []reminderOut }
		e.gql(t, "rep@contoso.com", `query($m: ID) { reminders(messageId: $m) { id kind state reason } }`, map[string]any{"m": messageID}, &out)
		for _, r := range out.Reminders {
			if r.ID == id && r.State != "PENDING" {
				return r
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("reminder %s still pending", id)
	return reminderOut{}
}

func TestRemindersEndToEnd(t *testing.T) {
	e := start(t)
	sub := subscribeAlerts(t, e, "rep@contoso.com", "")
	id, pixels := followFor(t, e, "rep@contoso.com", "Quote", "ann@fabrikam.com")
	soon := time.Now().Add(700 * time.Millisecond)

	anyway := setReminder(t, e, id, "ANYWAY", soon)
	noReply := setReminder(t, e, id, "NO_REPLY_BY", soon)
	later := setReminder(t, e, id, "NOT_OPENED_BY", time.Now().Add(time.Hour))

	// A reply arrives before the NO_REPLY_BY reminder is due (replies reach the store directly).
	reply := followed.Event{ID: "reply-1", MessageID: id, Kind: followed.Replied, At: time.Now(), Recipient: 0, Link: -1}
	if _, err := e.DB.RecordEvents(context.Background(), []followed.Event{reply}); err != nil {
		t.Fatal(err)
	}
	got := map[string]alertOut{}
	for range 2 {
		a := sub.next(t)
		got[a.Kind] = a
	}
	if a := got["REMINDER"]; a.ReminderID == nil || *a.ReminderID != anyway.ID || *a.ReminderKind != "ANYWAY" || a.Message.Subject != "Quote" {
		t.Fatalf("reminder alert: %+v", a)
	}
	if a := got["REPLY_RECEIVED"]; a.Recipient == nil || *a.Recipient != "ann@fabrikam.com" {
		t.Fatalf("reply alert: %+v", a)
	}
	if r := settled(t, e, id, noReply.ID); r.State != "SKIPPED" || r.Reason == nil || *r.Reason != "REPLIED" {
		t.Fatalf("NO_REPLY_BY after a reply: %+v", r)
	}
	if r := settled(t, e, id, anyway.ID); r.State != "FIRED" {
		t.Fatalf("ANYWAY: %+v", r)
	}

	// Cancelling: twice is harmless; a fired reminder cannot be cancelled.
	for range 2 {
		var out struct{ CancelReminder reminderOut }
		r := e.gql(t, "rep@contoso.com", `mutation($id: ID!) { cancelReminder(id: $id) { id state } }`, map[string]any{"id": later.ID}, &out)
		if r.code() != "" || out.CancelReminder.State != "CANCELLED" {
			t.Fatalf("cancel: %+v %+v", r.Errors, out)
		}
	}
	if r := e.gql(t, "rep@contoso.com", `mutation($id: ID!) { cancelReminder(id: $id) { id } }`, map[string]any{"id": anyway.ID}, nil); r.code() != "BAD_USER_INPUT" {
		t.Fatalf("cancel a fired reminder: %+v", r.Errors)
	}

	// Clicks alert only once asked for; an open after NOT_OPENED_BY was set passes it over.
	var prefs struct {
		SetAlertPreferences struct{ FirstOpen, LinkClicked bool }
	}
	e.gql(t, "rep@contoso.com", `mutation { setAlertPreferences(input: {linkClicked: true, firstOpen: false}) { firstOpen linkClicked } }`, nil, &prefs)
	if prefs.SetAlertPreferences.FirstOpen || !prefs.SetAlertPreferences.LinkClicked {
		t.Fatalf("preferences: %+v", prefs)
	}
	notOpened := setReminder(t, e, id, "NOT_OPENED_BY", time.Now().Add(700*time.Millisecond))
	get(t, "GET", pixels[0], outlookUA).Body.Close() // no FIRST_OPEN alert: turned off
	click := followed.Event{ID: "click-1", MessageID: id, Kind: followed.LinkClicked, At: time.Now(), Recipient: 0, Link: 0, URL: "https://contoso.example/"}
	if _, err := e.DB.RecordEvents(context.Background(), []followed.Event{click}); err != nil {
		t.Fatal(err)
	}
	if a := sub.next(t); a.Kind != "LINK_CLICKED" || a.URL == nil || *a.URL != click.URL {
		t.Fatalf("next alert %+v, want the click (the open's alert is turned off)", a)
	}
	if r := settled(t, e, id, notOpened.ID); r.State != "SKIPPED" || *r.Reason != "OPENED" {
		t.Fatalf("NOT_OPENED_BY after an open: %+v", r)
	}
}

// A follow-up reminder is about mail that left: one due before a scheduled send is refused, one that
// comes due while the send waits is skipped, and cancelling the send cancels its reminders.
func TestRemindersWaitForTheSend(t *testing.T) {
	e := start(t)
	schedule := func(id string) {
		t.Helper()
		e.mustGQL(t, "rep@contoso.com", `mutation($id: ID!, $at: Time) { sendMessage(id: $id, at: $at) { id } }`,
			map[string]any{"id": id, "at": time.Now().Add(time.Hour)}, nil)
	}
	early, _ := followFor(t, e, "rep@contoso.com", "Early", "ann@fabrikam.com")
	schedule(early)
	r := e.gql(t, "rep@contoso.com", `mutation($m: ID!, $at: Time!) { setReminder(messageId: $m, kind: NO_REPLY_BY, at: $at) { id } }`,
		map[string]any{"m": early, "at": time.Now().Add(30 * time.Minute)}, nil)
	if r.code() != "BAD_USER_INPUT" || !strings.Contains(r.Errors[0].Message, "not after the message is sent") {
		t.Fatalf("a reminder due before the scheduled send: %+v", r.Errors)
	}
	setReminder(t, e, early, "NO_REPLY_BY", time.Now().Add(2*time.Hour)) // after it: fine

	// Set on a draft, then the send is scheduled past the reminder's time.
	waiting, _ := followFor(t, e, "rep@contoso.com", "Waiting", "ann@fabrikam.com")
	skipped := setReminder(t, e, waiting, "ANYWAY", time.Now().Add(700*time.Millisecond))
	schedule(waiting)
	if got := settled(t, e, waiting, skipped.ID); got.State != "SKIPPED" || got.Reason == nil || *got.Reason != "NOT_SENT" {
		t.Fatalf("a reminder due while the send waits: %+v", got)
	}

	cancelled, _ := followFor(t, e, "rep@contoso.com", "Cancelled", "ann@fabrikam.com")
	schedule(cancelled)
	rem := setReminder(t, e, cancelled, "NOT_OPENED_BY", time.Now().Add(2*time.Hour))
	e.mustGQL(t, "rep@contoso.com", `mutation($id: ID!) { cancelScheduledSend(id: $id) { id } }`, map[string]any{"id": cancelled}, nil)
	if got := settled(t, e, cancelled, rem.ID); got.State != "CANCELLED" {
		t.Fatalf("a reminder on a send cancelled: %+v", got)
	}
}

func TestAlertsSlowSubscriberIsToldToResync(t *testing.T) {
	e := start(t)
	const n = 500
	c := subscribeAlerts(t, e, "rep@contoso.com", "")
	// Wait until the subscription is live, then store a burst the subscriber's buffer (8) cannot hold.
	for e.Alerts.Subscribers() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	burst := make([]alerts.Alert, n)
	for i := range burst {
		burst[i] = alerts.Alert{ID: fmt.Sprintf("burst-%03d", i), Key: fmt.Sprintf("burst:%d", i), Owner: "rep@contoso.com",
			Kind: alerts.FirstOpen, At: time.Now(), MessageID: "m", Subject: fmt.Sprint(i)}
	}
	if _, err := e.DB.AppendAlerts(context.Background(), burst); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	// A client resyncs from the cursor of the last alert it got; one that got none before the close
	// resyncs from where it started, here the empty store's beginning.
	last := alerts.EncodeCursor(0)
	c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		var m wsMessage
		err := c.c.ReadJSON(&m)
		if err != nil {
			if !websocket.IsCloseError(err, 4409) {
				t.Fatalf("err = %v after %d alerts, want close 4409", err, len(seen))
			}
			break
		}
		if m.Type == "next" {
			var p struct{ Data struct{ Alerts alertOut } }
			json.Unmarshal(m.Payload, &p)
			seen[p.Data.Alerts.ID], last = true, p.Data.Alerts.Cursor
		}
	}
	if len(seen) >= n {
		t.Fatalf("all %d alerts arrived before the close", len(seen))
	}
	// Resubscribing from the last cursor brings the rest: nothing was lost.
	again := subscribeAlerts(t, e, "rep@contoso.com", last)
	for len(seen) < n {
		a := again.next(t)
		if seen[a.ID] {
			t.Fatalf("%s delivered twice", a.ID)
		}
		seen[a.ID] = true
	}
}

func TestAlertSubscriptionsLeakNoGoroutines(t *testing.T) {
	e := start(t)
	warm := subscribeAlerts(t, e, "rep@contoso.com", "")
	warm.c.Close()
	settle := func(want func(int) bool) int {
		var n int
		for range 200 {
			runtime.GC()
			if n = runtime.NumGoroutine(); want(n) && e.Alerts.Subscribers() == 0 {
				return n
			}
			time.Sleep(25 * time.Millisecond)
		}
		return n
	}
	before := settle(func(int) bool { return true })
	var clients []*alertClient
	for i := range 20 {
		since := ""
		if i%2 == 0 {
			since = alerts.EncodeCursor(0) // replaying ones too
		}
		clients = append(clients, subscribeAlerts(t, e, "rep@contoso.com", since))
	}
	for e.Alerts.Subscribers() < 20 {
		time.Sleep(10 * time.Millisecond)
	}
	if during := runtime.NumGoroutine(); during <= before {
		t.Fatalf("%d goroutines with 20 subscribers, %d before: the count does not see them", during, before)
	}
	for _, c := range clients {
		c.c.Close() // vanish mid-stream, no complete, no close frame
	}
	if after := settle(func(n int) bool { return n <= before }); after > before {
		t.Fatalf("%d goroutines after the clients vanished, %d before; subscribers left: %d", after, before, e.Alerts.Subscribers())
	}
}
