package server

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/engage-email/engage/delivery"
	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/graph"
)

// outboxInboundRoutes lets someone on a local-mode Engage answer an outbox mail as its recipient would:
// a reply, an out-of-office, or a bounce, built as real RFC 5322 mail and processed like mail from Exchange.
func (s *Server) outboxInboundRoutes(mux *http.ServeMux) {
	if s.deps.Inbound == nil || s.deps.Resolver == nil || s.deps.Resolver.LocalOutbox == nil {
		return
	}
	for _, kind := range []string{"reply", "auto-reply", "bounce"} {
		mux.HandleFunc("POST "+graph.OutboxPath+"{id}/"+kind, func(w http.ResponseWriter, r *http.Request) { s.outboxInbound(w, r, kind) })
	}
}

func (s *Server) outboxInbound(w http.ResponseWriter, r *http.Request, kind string) {
	e, ok := s.outboxEntry(w, r)
	if !ok {
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "unreadable form: "+err.Error(), http.StatusBadRequest)
		return
	}
	as, err := recipientOf(e, r.PostFormValue("as"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var raw string
	switch kind {
	case "reply":
		raw = simulatedReply(e, as, r.PostFormValue("text"), time.Now())
	case "auto-reply":
		raw = simulatedAutoReply(e, as, time.Now())
	default:
		hard := r.PostFormValue("severity") != "soft"
		raw = simulatedBounce(e, as, hard, time.Now())
	}
	if _, err := s.deps.Inbound.SubmitRaw(r.Context(), e.From, []byte(raw)); err != nil {
		if errors.Is(err, followed.ErrBadInput) {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.deps.Log.ErrorContext(r.Context(), "simulated inbound mail not queued", "err", err)
		http.Error(w, "the mail cannot be queued right now", http.StatusServiceUnavailable)
		return
	}
	http.Redirect(w, r, "/outbox", http.StatusSeeOther)
}

// recipientOf picks who answers: as when it is one of the mail's recipients, else the first of them.
func recipientOf(e delivery.OutboxEntry, as string) (string, error) {
	all := append(append(append([]delivery.Address{}, e.To...), e.Cc...), e.Bcc...)
	if len(all) == 0 {
		return "", errors.New("the mail has no recipient to answer as")
	}
	if as == "" {
		return all[0].Email, nil
	}
	for _, a := range all {
		if strings.EqualFold(a.Email, as) {
			return a.Email, nil
		}
	}
	return "", fmt.Errorf("%q is not a recipient of this mail", as)
}

// headerSafe keeps a value on one header line.
func headerSafe(v string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
}

func domainOf(email string) string {
	if _, d, ok := strings.Cut(email, "@"); ok && d != "" {
		return headerSafe(d)
	}
	return "engage.local"
}

func newMessageID(at time.Time, domain string) string {
	return "<" + followed.NewID(at) + "@" + domain + ">"
}

func simulatedReply(e delivery.OutboxEntry, from, text string, at time.Time) string {
	if strings.TrimSpace(text) == "" {
		text = "Thanks, this looks good. Can we talk on Thursday?"
	}
	return "From: " + headerSafe(from) + "\r\nTo: " + headerSafe(e.From) + "\r\nSubject: Re: " + headerSafe(e.Subject) +
		"\r\nDate: " + at.UTC().Format(time.RFC1123Z) + "\r\nMessage-ID: " + newMessageID(at, domainOf(from)) +
		"\r\nIn-Reply-To: " + headerSafe(e.InternetMessageID) + "\r\nReferences: " + headerSafe(e.InternetMessageID) +
		"\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + strings.ReplaceAll(text, "\n", "\r\n") + "\r\n"
}

func simulatedAutoReply(e delivery.OutboxEntry, from string, at time.Time) string {
	return "From: " + headerSafe(from) + "\r\nTo: " + headerSafe(e.From) + "\r\nSubject: Automatic reply: " + headerSafe(e.Subject) +
		"\r\nDate: " + at.UTC().Format(time.RFC1123Z) + "\r\nMessage-ID: " + newMessageID(at, domainOf(from)) +
		"\r\nIn-Reply-To: " + headerSafe(e.InternetMessageID) + "\r\nAuto-Submitted: auto-replied\r\nX-Auto-Response-Suppress: All" +
		"\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
		"I am out of the office until Monday with limited access to email.\r\n"
}

// simulatedBounce is a Postfix-style delivery status notification (RFC 3464) returning the mail's headers.
func simulatedBounce(e delivery.OutboxEntry, rcpt string, hard bool, at time.Time) string {
	status, diag := "5.1.1", "550 5.1.1 <"+rcpt+">: Recipient address rejected: User unknown in virtual mailbox table"
	if !hard {
		status, diag = "5.2.2", "552 5.2.2 <"+rcpt+">: Mailbox full"
	}
	rcpt, diag = headerSafe(rcpt), headerSafe(diag)
	domain := domainOf(e.From)
	boundary := "bounce-" + followed.NewID(at)
	return "From: MAILER-DAEMON@" + domain + " (Mail Delivery System)\r\nTo: " + headerSafe(e.From) +
		"\r\nSubject: Undelivered Mail Returned to Sender\r\nDate: " + at.UTC().Format(time.RFC1123Z) +
		"\r\nMessage-ID: " + newMessageID(at, domain) + "\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0" +
		"\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"" + boundary + "\"\r\n\r\n" +
		"--" + boundary + "\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n" +
		"This is the mail system at host " + domain + ".\r\n\r\nI'm sorry to have to inform you that your message could not\r\n" +
		"be delivered to one or more recipients.\r\n\r\n<" + rcpt + ">: host mx." + domainOf(rcpt) + " said: " + diag + "\r\n\r\n" +
		"--" + boundary + "\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; " + domain + "\r\n\r\n" +
		"Final-Recipient: rfc822; " + rcpt + "\r\nOriginal-Recipient: rfc822;" + rcpt + "\r\nAction: failed\r\nStatus: " + status +
		"\r\nRemote-MTA: dns; mx." + domainOf(rcpt) + "\r\nDiagnostic-Code: smtp; " + diag + "\r\n\r\n" +
		"--" + boundary + "\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: " + headerSafe(e.From) + "\r\nTo: " + rcpt +
		"\r\nSubject: " + headerSafe(e.Subject) + "\r\nMessage-ID: " + headerSafe(e.InternetMessageID) + "\r\n\r\n" +
		"--" + boundary + "--\r\n"
}
