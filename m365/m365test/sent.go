package m365test

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// OutlookMail is a message Outlook itself sent from a mailbox, as the Outlook add-in has it send its
// drafts: Graph shows it in Sent Items only.
type OutlookMail struct {
	To, Subject, HTML string
	InternetMessageID string // default generated
	ConversationID    string // default generated
	SentAt            time.Time
}

func (g *Graph) sentRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1.0/users/{user}/mailFolders/{folder}/messages", g.listFolder)
}

// SendFromOutlook puts m in mailbox's Sent Items and returns it with its ids filled in.
func (g *Graph) SendFromOutlook(mailbox string, m OutlookMail) OutlookMail {
	mailbox = strings.ToLower(mailbox)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.seq++
	id := fmt.Sprintf("AAMkAGI2TG93Sent%06d=", g.seq)
	if m.InternetMessageID == "" {
		m.InternetMessageID = fmt.Sprintf("<OL%06d@%s>", g.seq, domainOf(mailbox))
	}
	if m.ConversationID == "" {
		m.ConversationID = fmt.Sprintf("AAQkAGI2TG93Conv%06d=", g.seq)
	}
	if m.SentAt.IsZero() {
		m.SentAt = g.inbox.now()
	}
	g.messages[id] = map[string]any{"id": id, "internetMessageId": m.InternetMessageID, "conversationId": m.ConversationID,
		"sentDateTime": m.SentAt.UTC().Format(time.RFC3339), "subject": m.Subject, "parentFolderId": "sentitems", "isDraft": false,
		"from":         map[string]any{"emailAddress": map[string]any{"address": mailbox}},
		"toRecipients": []any{map[string]any{"emailAddress": map[string]any{"address": m.To}}},
		"body":         map[string]any{"contentType": "html", "content": m.HTML}}
	g.owners[id] = mailbox
	return m
}

// listFolder lists a folder's messages, filtered as Graph does on internetMessageId eq '<id>' (the only
// filter faked), with $select and $top.
func (g *Graph) listFolder(w http.ResponseWriter, r *http.Request) {
	user, folder := strings.ToLower(r.PathValue("user")), strings.ToLower(r.PathValue("folder"))
	q := r.URL.Query()
	want, ok := strings.CutPrefix(q.Get("$filter"), "internetMessageId eq '")
	want, ok2 := strings.CutSuffix(want, "'")
	if !ok || !ok2 {
		graphError(w, http.StatusBadRequest, "BadRequest", "Unsupported filter "+q.Get("$filter"))
		return
	}
	want = strings.ReplaceAll(want, "''", "'")
	g.mu.Lock()
	defer g.mu.Unlock()
	value := []any{}
	for id, msg := range g.messages {
		if g.owners[id] != user || msg["parentFolderId"] != folder || msg["internetMessageId"] != want {
			continue
		}
		out := msg
		if sel := q.Get("$select"); sel != "" {
			out = map[string]any{"id": msg["id"]}
			for _, f := range strings.Split(sel, ",") {
				if v, ok := msg[f]; ok {
					out[f] = v
				}
			}
		}
		value = append(value, out)
	}
	writeJSON(w, http.StatusOK, withContext(map[string]any{"value": value}, "Collection(message)"))
}
