package server

import (
	"errors"
	"html/template"
	"net/http"
	"strings"

	"github.com/engage-email/engage/delivery"
	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/graph"
)

// outboxPage lists the local outbox; plain HTML, no script, so it works in any browser.
var outboxPage = template.Must(template.New("outbox").Funcs(template.FuncMap{
	"addrs": func(as []delivery.Address) string {
		out := make([]string, len(as))
		for i, a := range as {
			out[i] = a.Email
		}
		return strings.Join(out, ", ")
	},
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Engage outbox</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem}table{border-collapse:collapse}td,th{padding:.3rem .8rem;text-align:left;border-bottom:1px solid #ddd}</style>
</head><body>
<h1>Outbox</h1>
<p>Mail sent in local mode stays here instead of leaving the machine. Open one as its recipient would:
its pixel and links reach this Engage like a real mail client's.</p>
{{if .}}<table>
<tr><th>Sent (UTC)</th><th>From</th><th>To</th><th>Cc</th><th>Bcc</th><th>Subject</th><th>Answer as the recipient</th></tr>
{{range .}}<tr><td>{{.SentAt.Format "2006-01-02 15:04:05"}}</td><td>{{.From}}</td><td>{{addrs .To}}</td><td>{{addrs .Cc}}</td><td>{{addrs .Bcc}}</td>
<td><a href="/outbox/{{.ID}}">{{if .Subject}}{{.Subject}}{{else}}(no subject){{end}}</a></td>
<td><form method="post" action="/outbox/{{.ID}}/reply"><button>Reply as recipient</button></form>
<form method="post" action="/outbox/{{.ID}}/auto-reply"><button>Auto-reply</button></form>
<form method="post" action="/outbox/{{.ID}}/bounce"><select name="severity"><option value="hard">hard</option><option value="soft">soft</option></select><button>Bounce</button></form></td></tr>
{{end}}</table>{{else}}<p>Nothing sent yet: follow a message and call <code>sendMessage</code>.</p>{{end}}
</body></html>
`))

// outboxRoutes serves the local outbox when there is one (local mode): anyone who can reach a local-mode
// Engage is trusted already, and recipients do not sign in to read their mail.
func (s *Server) outboxRoutes(mux *http.ServeMux) {
	if s.deps.Resolver == nil || s.deps.Resolver.LocalOutbox == nil {
		return
	}
	mux.HandleFunc("GET /outbox", s.outboxList)
	mux.HandleFunc("GET "+graph.OutboxPath+"{id}", s.outboxMail)
	s.outboxInboundRoutes(mux)
	s.outboxFileRoutes(mux)
}

func (s *Server) outboxList(w http.ResponseWriter, r *http.Request) {
	es, err := s.deps.Resolver.LocalOutbox.Entries(r.Context(), "", 200)
	if err != nil {
		s.deps.Log.ErrorContext(r.Context(), "outbox not listed", "err", err)
		http.Error(w, "the outbox cannot be read right now", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	if err := outboxPage.Execute(w, es); err != nil {
		s.deps.Log.WarnContext(r.Context(), "outbox page not written", "err", err)
	}
}

// outboxEntry reads the mail the path names, or answers why it cannot (404, or 503 while the store
// cannot be read) and reports false.
func (s *Server) outboxEntry(w http.ResponseWriter, r *http.Request) (delivery.OutboxEntry, bool) {
	e, err := s.deps.Resolver.LocalOutbox.Entry(r.Context(), r.PathValue("id"))
	if errors.Is(err, followed.ErrNotFound) {
		http.Error(w, "no such mail in the outbox", http.StatusNotFound)
		return e, false
	}
	if err != nil {
		s.deps.Log.ErrorContext(r.Context(), "outbox mail not read", "err", err)
		http.Error(w, "the outbox cannot be read right now", http.StatusServiceUnavailable)
		return e, false
	}
	return e, true
}

// outboxMail serves a sent mail's body exactly as rendered for its recipient. Mail clients run no
// script, so neither does this page: it is sandboxed, while images (the pixel) and links work.
func (s *Server) outboxMail(w http.ResponseWriter, r *http.Request) {
	e, ok := s.outboxEntry(w, r)
	if !ok {
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "sandbox allow-popups allow-popups-to-escape-sandbox; script-src 'none'; object-src 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	_, _ = w.Write([]byte(e.HTML))
	s.writeOutboxFiles(w, r, e)
}
