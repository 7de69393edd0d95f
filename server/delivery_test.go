package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

const sendFields = `id status sendError sentAt scheduledAt`

type sendOut struct {
	ID          string
	Status      string
	SendError   *string
	SentAt      *time.Time
	ScheduledAt *time.Time
}

type outboxOut struct {
	Outbox []struct {
		ID, MessageID, From, Subject, HTML, URL string
		To, Cc, Bcc                             []string
		SentAt                                  time.Time
	}
}

// status reads a message's delivery fields as user.
func (e *engage) status(t *testing.T, user, id string) sendOut {
	t.Helper()
	var out struct{ Message sendOut }
	e.mustGQL(t, user, `query($id: ID!) { message(id: $id) { `+sendFields+` } }`, map[string]any{"id": id}, &out)
	return out.Message
}

func TestSendNowToTheOutboxThenOpenAndClick(t *testing.T) {
	e := start(t)
	m := e.follow(t, repA, true, offerHTML, "ann@fabrikam.com", "bob@fabrikam.com").FollowMessage
	if s := e.status(t, repA, m.ID); s.Status != "DRAFT" || s.SentAt != nil {
		t.Fatalf("before sending: %+v", s)
	}
	var sent struct{ SendMessage sendOut }
	e.mustGQL(t, repA, `mutation($id: ID!) { sendMessage(id: $id) { `+sendFields+` } }`, map[string]any{"id": m.ID}, &sent)
	if s := sent.SendMessage; s.Status != "SENT" || s.SentAt == nil || s.SendError != nil || s.ScheduledAt != nil {
		t.Fatalf("sendMessage answered %+v", s)
	}

	var box outboxOut
	e.mustGQL(t, repA, `{ outbox { id messageId from to cc bcc subject html sentAt url } }`, nil, &box)
	if len(box.Outbox) != 2 {
		t.Fatalf("outbox holds %d mails, want one per recipient (2): %+v", len(box.Outbox), box.Outbox)
	}
	byRecipient := map[string]int{}
	for i, o := range box.Outbox {
		if o.MessageID != m.ID || o.From != repA || o.Subject != "Offer" || len(o.To) != 1 || o.URL != "/outbox/"+o.ID {
			t.Fatalf("outbox mail %+v", o)
		}
		byRecipient[o.To[0]] = i
	}
	ann := box.Outbox[byRecipient["ann@fabrikam.com"]]
	if ann.HTML != m.Renders[0].HTML {
		t.Fatalf("ann's mail is not her tracked render:\n%s\nwant\n%s", ann.HTML, m.Renders[0].HTML)
	}
	var others outboxOut
	e.mustGQL(t, repB, `{ outbox { id } }`, nil, &others)
	if len(others.Outbox) != 0 {
		t.Fatalf("rep B sees rep A's mail: %+v", others.Outbox)
	}

	// The listing and the mail itself, as a newcomer opens them in a browser.
	res := get(t, "GET", e.URL+"/outbox", "Mozilla/5.0")
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(page), `href="/outbox/`+ann.ID+`"`) ||
		!strings.Contains(string(page), "ann@fabrikam.com") || strings.Contains(string(page), "<script") {
		t.Fatalf("GET /outbox: %d\n%s", res.StatusCode, page)
	}
	res = get(t, "GET", e.URL+ann.URL, "Mozilla/5.0")
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || string(body) != ann.HTML || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(res.Header.Get("Content-Security-Policy"), "script-src 'none'") {
		t.Fatalf("GET %s: %d %v\n%s", ann.URL, res.StatusCode, res.Header, body)
	}
	if res := get(t, "GET", e.URL+"/outbox/nope", "Mozilla/5.0"); res.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown outbox mail: %d", res.StatusCode)
	}

	// Ann's mail client fetches the pixel and she clicks the offer.
	if res := get(t, "GET", pixelRe.FindStringSubmatch(string(body))[1], outlookUA); res.StatusCode != http.StatusOK {
		t.Fatalf("pixel: %d", res.StatusCode)
	}
	if res := get(t, "GET", hrefRe.FindStringSubmatch(string(body))[1], outlookUA); res.StatusCode != http.StatusFound ||
		res.Header.Get("Location") != "https://contoso.example/offer" {
		t.Fatalf("click: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	var seen struct {
		Message struct {
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
	deadline := time.Now().Add(10 * time.Second)
	for {
		e.mustGQL(t, repA, `query($id: ID!) { message(id: $id) { interactions { edges { node { kind recipient { email } } } } } }`,
			map[string]any{"id": m.ID}, &seen)
		if len(seen.Message.Interactions.Edges) == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	kinds := map[string]string{}
	for _, ed := range seen.Message.Interactions.Edges {
		if ed.Node.Recipient != nil {
			kinds[ed.Node.Kind] = ed.Node.Recipient.Email
		}
	}
	if kinds["OPENED"] != "ann@fabrikam.com" || kinds["LINK_CLICKED"] != "ann@fabrikam.com" {
		t.Fatalf("interactions %+v, want ann's open and click", seen.Message.Interactions.Edges)
	}
}

func TestScheduledSendOverGraphQL(t *testing.T) {
	e := start(t)
	m := e.follow(t, repA, false, offerHTML, "ann@fabrikam.com").FollowMessage
	send := `mutation($id: ID!, $at: Time) { sendMessage(id: $id, at: $at) { ` + sendFields + ` } }`
	at := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	var out struct{ SendMessage sendOut }
	e.mustGQL(t, repA, send, map[string]any{"id": m.ID, "at": at.Format(time.RFC3339)}, &out)
	if s := out.SendMessage; s.Status != "SCHEDULED" || s.ScheduledAt == nil || !s.ScheduledAt.Equal(at) {
		t.Fatalf("scheduled: %+v", s)
	}
	errCases := []struct {
		name, user, query string
		vars              map[string]any
		code, text        string
	}{
		{"send twice", repA, send, map[string]any{"id": m.ID}, "BAD_USER_INPUT", "already scheduled"},
		{"someone else's", repB, send, map[string]any{"id": m.ID}, "NOT_FOUND", ""},
		{"anonymous", "", send, map[string]any{"id": m.ID}, "UNAUTHENTICATED", ""},
		{"a time in the past", repA, send, map[string]any{"id": e.follow(t, repA, false, offerHTML, "x@fabrikam.com").FollowMessage.ID,
			"at": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)}, "BAD_USER_INPUT", "not in the future"},
		{"reschedule into the past", repA, `mutation($id: ID!, $at: Time!) { rescheduleSend(id: $id, at: $at) { id } }`,
			map[string]any{"id": m.ID, "at": "2001-01-01T00:00:00Z"}, "BAD_USER_INPUT", "not in the future"},
		{"not a time", repA, send, map[string]any{"id": m.ID, "at": "tomorrow"}, "GRAPHQL_VALIDATION_FAILED", ""},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.gql(t, tc.user, tc.query, tc.vars, nil)
			if tc.code == "GRAPHQL_VALIDATION_FAILED" {
				if len(r.Errors) == 0 || r.status >= 500 {
					t.Fatalf("bad time accepted: %d %+v", r.status, r)
				}
				return
			}
			if r.code() != tc.code || !strings.Contains(r.Errors[0].Message, tc.text) {
				t.Fatalf("got %+v, want %s containing %q", r.Errors, tc.code, tc.text)
			}
		})
	}

	// Reschedule to a moment away, then the worker sends it.
	soon := time.Now().Add(300 * time.Millisecond).UTC()
	var moved struct{ RescheduleSend sendOut }
	e.mustGQL(t, repA, `mutation($id: ID!, $at: Time!) { rescheduleSend(id: $id, at: $at) { `+sendFields+` } }`,
		map[string]any{"id": m.ID, "at": soon.Format(time.RFC3339Nano)}, &moved)
	if s := moved.RescheduleSend; s.Status != "SCHEDULED" || s.ScheduledAt == nil || !s.ScheduledAt.Equal(soon.Truncate(time.Millisecond)) {
		t.Fatalf("rescheduled: %+v", s)
	}
	deadline := time.Now().Add(15 * time.Second)
	s := e.status(t, repA, m.ID)
	for s.Status != "SENT" && time.Now().Before(deadline) {
		time.Sleep(25 * time.Millisecond)
		s = e.status(t, repA, m.ID)
	}
	if s.Status != "SENT" || s.SentAt == nil || s.SentAt.Before(soon.Truncate(time.Millisecond)) {
		t.Fatalf("after its time: %+v", s)
	}
	var box outboxOut
	e.mustGQL(t, repA, `{ outbox { messageId to } }`, nil, &box)
	if len(box.Outbox) != 1 || box.Outbox[0].MessageID != m.ID {
		t.Fatalf("outbox %+v", box.Outbox)
	}
	r := e.gql(t, repA, `mutation($id: ID!) { cancelScheduledSend(id: $id) { id } }`, map[string]any{"id": m.ID}, nil)
	if r.code() != "BAD_USER_INPUT" || !strings.Contains(r.Errors[0].Message, "already sent") {
		t.Fatalf("cancel after sending: %+v", r.Errors)
	}

	// A scheduled send cancelled goes back to DRAFT and nothing leaves.
	other := e.follow(t, repA, false, offerHTML, "carol@fabrikam.com").FollowMessage
	e.mustGQL(t, repA, send, map[string]any{"id": other.ID, "at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}, nil)
	var cancelled struct{ CancelScheduledSend sendOut }
	e.mustGQL(t, repA, `mutation($id: ID!) { cancelScheduledSend(id: $id) { `+sendFields+` } }`, map[string]any{"id": other.ID}, &cancelled)
	if s := cancelled.CancelScheduledSend; s.Status != "DRAFT" || s.ScheduledAt != nil {
		t.Fatalf("cancelled: %+v", s)
	}

	// A query reads each message's send job once for all four fields; a mutation's result reads it
	// afresh, so two mutations in one operation each show what they did.
	var both struct{ S, C sendOut }
	e.mustGQL(t, repA, `mutation($id: ID!, $at: Time!) { s: sendMessage(id: $id, at: $at) { `+sendFields+` }
		c: cancelScheduledSend(id: $id) { `+sendFields+` } }`,
		map[string]any{"id": other.ID, "at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}, &both)
	if both.S.Status != "SCHEDULED" || both.S.ScheduledAt == nil || both.C.Status != "DRAFT" || both.C.ScheduledAt != nil {
		t.Fatalf("schedule then cancel in one operation: %+v", both)
	}
	var twice struct{ A, B sendOut }
	e.mustGQL(t, repA, `query($a: ID!, $b: ID!) { a: message(id: $a) { `+sendFields+` } b: message(id: $b) { `+sendFields+` } }`,
		map[string]any{"a": m.ID, "b": other.ID}, &twice)
	if twice.A.Status != "SENT" || twice.A.SentAt == nil || twice.B.Status != "DRAFT" || twice.B.SentAt != nil {
		t.Fatalf("two messages in one query: %+v", twice)
	}
}
