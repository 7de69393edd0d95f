package m365test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// inbox is the fake's Inbox state: subscriptions by id, and per mailbox the ids of mail delivered to
// its Inbox in arrival order (the delta log).
type inbox struct {
	subs     map[string]map[string]any
	log      map[string][]string // lower-cased mailbox -> message ids
	subSeq   int
	pageSize int
	notify   *http.Client
	now      func() time.Time // Graph's clock, for the limit on subscription lifetimes
}

// InboundMail is a message arriving in a mailbox's Inbox, in Graph's terms.
type InboundMail struct {
	From, Subject     string
	Text              string            // the body, as text
	Headers           map[string]string // internetMessageHeaders (In-Reply-To, Auto-Submitted, ...)
	InternetMessageID string            // default generated
	ConversationID    string
	ReceivedAt        time.Time // default the fake's clock
}

func (g *Graph) inboxRoutes(mux *http.ServeMux) {
	g.inbox = inbox{subs: map[string]map[string]any{}, log: map[string][]string{}, pageSize: 2, notify: http.DefaultClient, now: time.Now}
	mux.HandleFunc("POST /v1.0/subscriptions", g.createSubscription)
	mux.HandleFunc("PATCH /v1.0/subscriptions/{id}", g.renewSubscription)
	mux.HandleFunc("DELETE /v1.0/subscriptions/{id}", g.deleteSubscription)
	mux.HandleFunc("GET /v1.0/users/{user}/mailFolders/{folder}/messages/delta", g.inboxDelta)
}

// SetNotifyClient is the client the fake posts validation requests and notifications with.
func (g *Graph) SetNotifyClient(c *http.Client) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inbox.notify = c
}

// SetClock sets the fake's clock, so tests that move time can renew subscriptions days ahead.
func (g *Graph) SetClock(now func() time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inbox.now = now
}

// SetDeltaPageSize sets how many messages one delta page holds (default 2, so paging is exercised).
func (g *Graph) SetDeltaPageSize(n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inbox.pageSize = max(n, 1)
}

// Subscriptions returns the live subscriptions by id, as Graph keeps them.
func (g *Graph) Subscriptions() map[string]map[string]any {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[string]map[string]any{}
	for id, s := range g.inbox.subs {
		out[id] = withContext(s, "subscriptions/$entity")
	}
	return out
}

// DropSubscription forgets a subscription as Graph does when it expires or is removed.
func (g *Graph) DropSubscription(id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.inbox.subs, id)
}

// Deliver puts mail in mailbox's Inbox and returns its id; unlike Notify it tells no subscriber, as
// when Graph's notification is lost.
func (g *Graph) Deliver(mailbox string, m InboundMail) string {
	mailbox = strings.ToLower(mailbox)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.seq++
	id := fmt.Sprintf("AAMkAGI2TG93Inbox%06d=", g.seq)
	if m.InternetMessageID == "" {
		m.InternetMessageID = fmt.Sprintf("<IN%06d@fabrikam.com>", g.seq)
	}
	if m.ReceivedAt.IsZero() {
		m.ReceivedAt = g.inbox.now()
	}
	hs := []any{}
	for name, v := range m.Headers {
		hs = append(hs, map[string]any{"name": name, "value": v})
	}
	g.messages[id] = map[string]any{"id": id, "internetMessageId": m.InternetMessageID, "conversationId": m.ConversationID,
		"receivedDateTime": m.ReceivedAt.UTC().Format(time.RFC3339), "subject": m.Subject, "parentFolderId": "inbox",
		"from":                   map[string]any{"emailAddress": map[string]any{"address": m.From}},
		"body":                   map[string]any{"contentType": "text", "content": m.Text},
		"internetMessageHeaders": hs, "isDraft": false}
	g.owners[id] = mailbox
	g.inbox.log[mailbox] = append(g.inbox.log[mailbox], id)
	return id
}

// Notify posts a "created" change notification for message id to every subscription on mailbox, as
// Graph does, and returns the status codes the subscribers answered.
func (g *Graph) Notify(ctx context.Context, mailbox, id string) ([]int, error) {
	mailbox = strings.ToLower(mailbox)
	var posts []func() (int, error)
	g.mu.Lock()
	for sid, s := range g.inbox.subs {
		if s["mailbox"] != mailbox {
			continue
		}
		n := map[string]any{"subscriptionId": sid, "clientState": s["clientState"], "changeType": "created",
			"resource": "Users/" + mailbox + "/Messages/" + id, "subscriptionExpirationDateTime": s["expirationDateTime"],
			"tenantId": "tenant", "resourceData": map[string]any{"@odata.type": "#Microsoft.Graph.Message", "id": id}}
		target := s["notificationUrl"].(string)
		posts = append(posts, func() (int, error) { return g.post(ctx, target, n) })
	}
	g.mu.Unlock()
	var codes []int
	for _, p := range posts {
		code, err := p()
		if err != nil {
			return codes, err
		}
		codes = append(codes, code)
	}
	return codes, nil
}

// Lifecycle posts a lifecycle notification (reauthorizationRequired, subscriptionRemoved, missed) for a
// subscription to its lifecycle URL and returns the status answered.
func (g *Graph) Lifecycle(ctx context.Context, subscriptionID, event string) (int, error) {
	g.mu.Lock()
	s, ok := g.inbox.subs[subscriptionID]
	var target string
	var n map[string]any
	if ok {
		target, _ = s["lifecycleNotificationUrl"].(string)
		n = map[string]any{"subscriptionId": subscriptionID, "clientState": s["clientState"], "lifecycleEvent": event,
			"resource": s["resource"], "subscriptionExpirationDateTime": s["expirationDateTime"], "tenantId": "tenant"}
	}
	g.mu.Unlock()
	if !ok {
		return 0, fmt.Errorf("m365test: no subscription %s", subscriptionID)
	}
	return g.post(ctx, target, n)
}

func (g *Graph) post(ctx context.Context, target string, n map[string]any) (int, error) {
	body, err := json.Marshal(map[string]any{"value": []any{n}})
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	g.mu.Lock()
	c := g.inbox.notify
	g.mu.Unlock()
	res, err := c.Do(req)
	if err != nil {
		return 0, fmt.Errorf("m365test: post notification: %w", err)
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode, nil
}

// createSubscription validates the notification URL as Graph does (a POST with validationToken that
// must be echoed as text/plain within 10 seconds) before creating the subscription.
func (g *Graph) createSubscription(w http.ResponseWriter, r *http.Request) {
	var in map[string]any
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		graphError(w, http.StatusBadRequest, "InvalidRequest", "Cannot read the subscription: "+err.Error())
		return
	}
	resource, _ := in["resource"].(string)
	mailbox, ok := strings.CutPrefix(resource, "users/")
	mailbox, _, ok2 := strings.Cut(mailbox, "/mailFolders('inbox')/messages")
	if !ok || !ok2 || in["changeType"] != "created" {
		graphError(w, http.StatusBadRequest, "InvalidRequest", "Unsupported resource or change type.")
		return
	}
	if mb, err := url.PathUnescape(mailbox); err == nil {
		mailbox = mb
	}
	exp, err := time.Parse(time.RFC3339, fmt.Sprint(in["expirationDateTime"]))
	g.mu.Lock()
	now := g.inbox.now()
	g.mu.Unlock()
	if err != nil || exp.Sub(now) > 10080*time.Minute || exp.Before(now) {
		graphError(w, http.StatusBadRequest, "InvalidRequest", "Subscription expiration can only be 10070 minutes in the future.")
		return
	}
	for _, key := range []string{"notificationUrl", "lifecycleNotificationUrl"} {
		target, _ := in[key].(string)
		if err := g.validate(r.Context(), target); err != nil {
			graphError(w, http.StatusBadRequest, "ValidationError", "Subscription validation request failed: "+err.Error())
			return
		}
	}
	g.mu.Lock()
	g.inbox.subSeq++
	id := fmt.Sprintf("7f105c7d-2dc5-4530-97cd-%012d", g.inbox.subSeq)
	in["id"], in["mailbox"] = id, strings.ToLower(mailbox)
	g.inbox.subs[id] = in
	out := withContext(in, "subscriptions/$entity")
	g.mu.Unlock()
	writeJSON(w, http.StatusCreated, out)
}

// validate makes Graph's validation request to target.
func (g *Graph) validate(ctx context.Context, target string) error {
	token := "Validation: Testing client application reachability for subscription Request-Id: 1234"
	u, err := url.Parse(target)
	if err != nil {
		return err
	}
	q := u.Query()
	q.Set("validationToken", token)
	u.RawQuery = q.Encode()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), nil)
	if err != nil {
		return err
	}
	g.mu.Lock()
	c := g.inbox.notify
	g.mu.Unlock()
	res, err := c.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") || string(body) != token {
		return fmt.Errorf("%s answered %d %q %q", target, res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	return nil
}

func (g *Graph) renewSubscription(w http.ResponseWriter, r *http.Request) {
	var in map[string]any
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		graphError(w, http.StatusBadRequest, "InvalidRequest", err.Error())
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	s, ok := g.inbox.subs[r.PathValue("id")]
	if !ok {
		graphError(w, http.StatusNotFound, "ResourceNotFound", "The object was not found.")
		return
	}
	s["expirationDateTime"] = in["expirationDateTime"]
	writeJSON(w, http.StatusOK, withContext(s, "subscriptions/$entity"))
}

func (g *Graph) deleteSubscription(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.inbox.subs[r.PathValue("id")]; !ok {
		graphError(w, http.StatusNotFound, "ResourceNotFound", "The object was not found.")
		return
	}
	delete(g.inbox.subs, r.PathValue("id"))
	w.WriteHeader(http.StatusNoContent)
}

// inboxDelta pages through the Inbox's log: $filter on receivedDateTime for the first round, then
// $skiptoken for next pages and $deltatoken for the next round, both positions in the log.
func (g *Graph) inboxDelta(w http.ResponseWriter, r *http.Request) {
	user := strings.ToLower(r.PathValue("user"))
	if !strings.EqualFold(r.PathValue("folder"), "inbox") {
		graphError(w, http.StatusNotFound, "ErrorItemNotFound", "Only the Inbox is faked.")
		return
	}
	q := r.URL.Query()
	g.mu.Lock()
	defer g.mu.Unlock()
	log := g.inbox.log[user]
	start := 0
	var since time.Time
	for _, key := range []string{"$skiptoken", "$deltatoken"} {
		if v := q.Get(key); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > len(log) {
				graphError(w, http.StatusBadRequest, "SyncStateNotFound", "The sync state was not found.")
				return
			}
			start = n
		}
	}
	if f := q.Get("$filter"); f != "" {
		v, ok := strings.CutPrefix(f, "receivedDateTime ge ")
		t, err := time.Parse(time.RFC3339, v)
		if !ok || err != nil {
			graphError(w, http.StatusBadRequest, "BadRequest", "Unsupported filter "+f)
			return
		}
		since = t
	}
	end := min(start+g.inbox.pageSize, len(log))
	value := []any{}
	for _, id := range log[start:end] {
		if at, _ := time.Parse(time.RFC3339, fmt.Sprint(g.messages[id]["receivedDateTime"])); !since.IsZero() && at.Before(since) {
			continue
		}
		value = append(value, map[string]any{"id": id})
	}
	base := g.srv.URL + "/v1.0/users/" + url.PathEscape(user) + "/mailFolders/inbox/messages/delta?"
	out := map[string]any{"value": value}
	if end < len(log) {
		out["@odata.nextLink"] = base + "$skiptoken=" + strconv.Itoa(end)
	} else {
		out["@odata.deltaLink"] = base + "$deltatoken=" + strconv.Itoa(end)
	}
	writeJSON(w, http.StatusOK, withContext(out, "Collection(message)"))
}
