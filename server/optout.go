package server

import (
	"context"
	"errors"
	"html"
	"net/http"
	"time"

	"github.com/engage-email/engage/followed"
)

// optOutRoutes serves the recipient's opt-out link: GET shows what it will do and asks to confirm,
// POST does it. Link scanners and prefetchers fetch every link in a mail with GET, so a GET that acted
// would opt recipients out who never asked to.
func (s *Server) optOutRoutes(mux *http.ServeMux) {
	if s.deps.OptOuts == nil {
		return
	}
	mux.HandleFunc("GET "+followed.PathOptOut+"{token}", s.optOutPage)
	mux.HandleFunc("POST "+followed.PathOptOut+"{token}", s.optOut)
}

func (s *Server) optOutToken(r *http.Request) (followed.Token, bool) {
	tok, err := s.deps.Keys.Parse(r.PathValue("token"))
	return tok, err == nil && tok.Kind == followed.TokenOptOut && tok.Recipient >= 0
}

func (s *Server) optOutPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.optOutToken(r); !ok {
		linkNotValid(w)
		return
	}
	optOutHTML(w, http.StatusOK, "Opt out of email tracking",
		`<p>The sender uses Engage to see when their emails are opened and their links clicked. You can ask `+
			`not to be followed: their future emails to you will not report what you do with them.</p>`+
			`<form method="post"><button type="submit" style="font-size:1em;padding:.5em 1em">Opt out</button></form>`)
}

func (s *Server) optOut(w http.ResponseWriter, r *http.Request) {
	tok, ok := s.optOutToken(r)
	if !ok {
		linkNotValid(w)
		return
	}
	hit := followed.Hit{Token: tok, At: time.Now(), IP: s.clientIP(r), UserAgent: r.UserAgent(), Method: r.Method}
	if s.deps.IPStorage != nil {
		hit.IPStorage = s.deps.IPStorage()
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), recordTimeout)
	defer cancel()
	email, err := s.deps.OptOuts.OptOut(ctx, tok, hit.Event(s.deps.Devices))
	switch {
	case errors.Is(err, followed.ErrNotFound), errors.Is(err, followed.ErrBadInput):
		linkNotValid(w)
	case err != nil:
		s.deps.Log.ErrorContext(ctx, "opt-out not recorded", "message", tok.MessageID, "err", err)
		optOutHTML(w, http.StatusServiceUnavailable, "Please try again",
			`<p>Your choice could not be recorded just now. Please use the link again in a few minutes.</p>`)
	default:
		optOutHTML(w, http.StatusOK, "You have opted out",
			`<p>`+html.EscapeString(email)+` will no longer be followed: emails to this address will not report `+
				`when they are opened or their links clicked.</p>`)
	}
}

func optOutHTML(w http.ResponseWriter, status int, title, body string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	w.Write([]byte(`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">` +
		`<title>` + html.EscapeString(title) + `</title></head><body style="font-family:sans-serif;max-width:36em;margin:4em auto">` +
		`<h1>` + html.EscapeString(title) + `</h1>` + body + `</body></html>`))
}
