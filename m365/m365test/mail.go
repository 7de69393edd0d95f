package m365test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// immutableIDs tells whether the request asked for ids that survive moves between folders; without it the
// fake, like Exchange, gives a sent message a new id when it moves from Drafts to Sent Items.
func immutableIDs(r *http.Request) bool {
	for _, p := range r.Header.Values("Prefer") {
		if strings.Contains(p, `IdType="ImmutableId"`) {
			return true
		}
	}
	return false
}

func (g *Graph) createMessage(w http.ResponseWriter, r *http.Request) {
	if tooLarge(w, r) {
		return
	}
	var msg map[string]any
	if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
		graphError(w, http.StatusBadRequest, "RequestBodyRead", "Cannot read the message: "+err.Error())
		return
	}
	for _, h := range asSlice(msg["internetMessageHeaders"]) {
		hm, _ := h.(map[string]any)
		name, _ := hm["name"].(string)
		if !strings.HasPrefix(strings.ToLower(name), "x-") {
			graphError(w, http.StatusBadRequest, "InvalidInternetMessageHeader",
				"The internet message header name '"+name+"' should start with 'x-' or 'X-'.")
			return
		}
	}
	user := strings.ToLower(r.PathValue("user"))
	g.mu.Lock()
	g.seq++
	id := fmt.Sprintf("AAMkAGI2TG93AAA%06d=", g.seq)
	msg["id"] = id
	msg["@odata.etag"] = fmt.Sprintf(`W/"CQAAABYAAAB%06d"`, g.seq)
	msg["internetMessageId"] = fmt.Sprintf("<EN%06d@%s>", g.seq, domainOf(user))
	msg["conversationId"] = fmt.Sprintf("AAQkAGI2TG93Conv%06d=", g.seq)
	msg["isDraft"] = true
	msg["createdDateTime"] = time.Now().UTC().Format(time.RFC3339)
	msg["parentFolderId"] = "drafts"
	g.messages[id] = msg
	g.owners[id] = user
	out := withContext(msg, "users('"+user+"')/messages/$entity")
	g.mu.Unlock()
	writeJSON(w, http.StatusCreated, out)
}

func (g *Graph) sendMessage(w http.ResponseWriter, r *http.Request) {
	user, id := strings.ToLower(r.PathValue("user")), r.PathValue("id")
	g.mu.Lock()
	defer g.mu.Unlock()
	msg, ok := g.messages[id]
	if !ok || g.owners[id] != user {
		graphError(w, http.StatusNotFound, "ErrorItemNotFound", "The specified object was not found in the store.")
		return
	}
	if msg["isDraft"] != true {
		graphError(w, http.StatusBadRequest, "ErrorInvalidRequest", "Only draft messages can be sent.")
		return
	}
	msg["isDraft"] = false
	msg["parentFolderId"] = "sentitems"
	msg["sentDateTime"] = time.Now().UTC().Format(time.RFC3339)
	if !immutableIDs(r) {
		delete(g.messages, id)
		delete(g.owners, id)
		newID := id + "SENT"
		msg["id"] = newID
		g.messages[newID] = msg
		g.owners[newID] = user
	}
	w.WriteHeader(http.StatusAccepted)
}

func (g *Graph) getMessage(w http.ResponseWriter, r *http.Request) {
	user, id := strings.ToLower(r.PathValue("user")), r.PathValue("id")
	g.mu.Lock()
	defer g.mu.Unlock()
	msg, ok := g.messages[id]
	if !ok || g.owners[id] != user {
		graphError(w, http.StatusNotFound, "ErrorItemNotFound", "The specified object was not found in the store.")
		return
	}
	out := msg
	if sel := r.URL.Query().Get("$select"); sel != "" {
		out = map[string]any{"id": msg["id"], "@odata.etag": msg["@odata.etag"]}
		for _, f := range strings.Split(sel, ",") {
			if v, ok := msg[f]; ok {
				out[f] = v
			}
		}
	}
	writeJSON(w, http.StatusOK, withContext(out, "users('"+user+"')/messages/$entity"))
}

func (g *Graph) getMailboxSettings(w http.ResponseWriter, r *http.Request) {
	user := strings.ToLower(r.PathValue("user"))
	g.mu.Lock()
	settings, ok := g.mailboxes[user]
	g.mu.Unlock()
	if !ok {
		graphError(w, http.StatusNotFound, "ErrorMailboxNotEnabledForRESTAPI", "The mailbox is either inactive, soft-deleted, or is hosted on-premise.")
		return
	}
	writeJSON(w, http.StatusOK, withContext(settings, "users('"+user+"')/mailboxSettings"))
}

// DefaultMailboxSettings is a typical mailboxSettings resource, with a Windows time zone name as Outlook sets.
func DefaultMailboxSettings(timeZone string) map[string]any {
	return map[string]any{
		"timeZone":   timeZone,
		"dateFormat": "dd/MM/yyyy",
		"timeFormat": "HH:mm",
		"language":   map[string]any{"locale": "en-GB", "displayName": "English (United Kingdom)"},
		"workingHours": map[string]any{
			"daysOfWeek": []any{"monday", "tuesday", "wednesday", "thursday", "friday"},
			"startTime":  "08:30:00.0000000",
			"endTime":    "17:30:00.0000000",
			"timeZone":   map[string]any{"name": timeZone},
		},
	}
}

func withContext(m map[string]any, entity string) map[string]any {
	out := make(map[string]any, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	out["@odata.context"] = "https://graph.microsoft.com/v1.0/$metadata#" + entity
	return out
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func domainOf(user string) string {
	if _, d, ok := strings.Cut(user, "@"); ok {
		return d
	}
	return "contoso.onmicrosoft.com"
}
