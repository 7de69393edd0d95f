package replies

import (
	"net/mail"
	"strings"
)

// classifyBounce decides whether a message reports a delivery failure (or only a delay or a success).
//
// A parsed delivery-status report is the strongest evidence and decides alone: Action: failed is a
// bounce; Action: delayed is not, because the server is still retrying and the message may yet arrive
// (counting it would make a later delivery look like a soft bounce), so it is an AUTO_REPLY with rule
// RuleDSNDelayed; success reports are AUTO_REPLY too. Without a report, the headers, subject, sender and
// the human-readable text of Exchange, Gmail, Postfix and Exim notices are used.
func classifyBounce(in Inbound) (Result, bool) {
	if r, ok := fromReports(in.Reports); ok {
		return r, true
	}
	if vs := headerValues(in.Headers, "X-Failed-Recipients"); len(vs) > 0 {
		b := textBounce(in.Text)
		if rs := addressesIn(strings.Join(vs, ",")); len(rs) > 0 {
			b.Recipients = rs
		}
		return Result{Kind: KindBounce, Rule: RuleFailedRecipients, Bounce: b}, true
	}
	subject := stripTags(normaliseSubject(in.Subject))
	if replyPrefix.MatchString(subject) {
		// A person answering or forwarding a notice; the notice's own headers are not on this message.
		return Result{}, false
	}
	if hasPrefix(subject, delaySubjects) {
		return Result{Kind: KindAutoReply, Rule: RuleDSNDelayed}, true
	}
	if hasHeader(in.Headers, "X-MS-Exchange-Message-Is-Ndr") {
		return Result{Kind: KindBounce, Rule: RuleExchangeNDR, Bounce: textBounce(in.Text)}, true
	}
	if hasPrefix(subject, failureSubjects) {
		return Result{Kind: KindBounce, Rule: RuleNDRSubject, Bounce: textBounce(in.Text)}, true
	}
	ct := in.ContentType
	if ct == "" { // Graph's JSON has no contentType field for the MIME type, only the header
		if vs := headerValues(in.Headers, "Content-Type"); len(vs) > 0 {
			ct = vs[0]
		}
	}
	report := isDeliveryReport(ct)
	if !report && !isDaemon(in.From) {
		return Result{}, false
	}
	rule := RuleNDRSender
	if report {
		rule = RuleDeliveryReport
	}
	text := strings.ToLower(in.Text)
	code := enhancedCode(in.Text, "5")
	if code == "" && containsAny(text, delayPhrases) {
		return Result{Kind: KindAutoReply, Rule: RuleDSNDelayed}, true
	}
	if code != "" || enhancedCode(in.Text, "4") != "" || containsAny(text, failurePhrases) {
		return Result{Kind: KindBounce, Rule: rule, Bounce: textBounce(in.Text)}, true
	}
	return Result{}, false
}

// fromReports decides from parsed delivery-status blocks; ok is false when none states a known action.
func fromReports(reports []DeliveryStatus) (Result, bool) {
	var failed []DeliveryStatus
	delayed, delivered := false, false
	for _, r := range reports {
		switch firstToken(r.Action) {
		case "failed":
			failed = append(failed, r)
		case "delayed":
			delayed = true
		case "delivered", "relayed", "expanded":
			delivered = true
		}
	}
	switch {
	case len(failed) > 0:
		return Result{Kind: KindBounce, Rule: RuleDSNFailed, Bounce: reportBounce(failed)}, true
	case delayed:
		return Result{Kind: KindAutoReply, Rule: RuleDSNDelayed}, true
	case delivered:
		return Result{Kind: KindAutoReply, Rule: RuleDSNDelivered}, true
	}
	return Result{}, false
}

// reportBounce merges the failed recipients of one report. The bounce is hard if any recipient failed
// hard, and then carries that recipient's status; per-recipient detail stays in Inbound.Reports.
func reportBounce(failed []DeliveryStatus) *Bounce {
	b := &Bounce{Recipients: []string{}}
	seen := map[string]bool{}
	for _, r := range failed {
		if r.Recipient != "" && !seen[strings.ToLower(r.Recipient)] {
			seen[strings.ToLower(r.Recipient)] = true
			b.Recipients = append(b.Recipients, r.Recipient)
		}
		code, hard := judge(r.Status, r.Diagnostic)
		if b.Status == "" && b.Diagnostic == "" || hard && !b.Hard {
			b.Hard, b.Status, b.Diagnostic = hard, code, r.Diagnostic
		}
	}
	return b
}

// textBounce reads a bounce's human-readable text: the status code (preferring one that follows an SMTP
// reply code, as in "550 5.1.1"), the line it sits on as diagnostic, and the failed recipients.
func textBounce(text string) *Bounce {
	b := &Bounce{Recipients: failedRecipientsIn(text)}
	line := statusLine(text)
	b.Status, b.Hard = judge("", line)
	if line == "" {
		b.Status, b.Hard = judge("", text)
	}
	b.Diagnostic = clip(strings.TrimSpace(line), maxDiagnostic)
	return b
}

// maxDiagnostic bounds the diagnostic text kept from a bounce, which is for people to read.
const maxDiagnostic = 300

// statusLine returns the line of text that holds a 4xx/5xx SMTP reply with an enhanced code, else the
// first line with any enhanced failure code, else the first with a basic reply code, together with the
// indented lines that continue it (Postfix and Exim fold long replies that way).
func statusLine(text string) string {
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	at := -1
	for i, l := range lines {
		if c := basicCode(l); c != "" && enhancedCode(l[strings.Index(l, c):], "45") != "" {
			at = i
			break
		}
	}
	for i := 0; at < 0 && i < len(lines); i++ {
		if enhancedCode(lines[i], "45") != "" {
			at = i
		}
	}
	for i := 0; at < 0 && i < len(lines); i++ {
		if basicCode(lines[i]) != "" {
			at = i
		}
	}
	if at < 0 {
		return ""
	}
	out := strings.TrimSpace(lines[at])
	for _, l := range lines[at+1:] {
		if l == "" || (l[0] != ' ' && l[0] != '\t') || len(out) >= maxDiagnostic {
			break
		}
		out += " " + strings.TrimSpace(l)
	}
	return out
}

// clip shortens s to at most n bytes without splitting a UTF-8 sequence.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// isDaemon reports whether an address is one that mail systems send notices from.
func isDaemon(from string) bool {
	addr := from
	if a, err := mail.ParseAddress(from); err == nil {
		addr = a.Address
	}
	local, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(addr)), "@")
	switch local {
	case "mailer-daemon", "mailerdaemon", "mail-daemon", "maildaemon", "postmaster":
		return true
	}
	// Exchange Online signs its notices as the fixed "MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e" recipient.
	return strings.HasPrefix(local, "microsoftexchange329e71ec88ae4615bbc36ab6ce41109e")
}

// hasPrefix reports whether a normalised subject starts with one of the prefixes.
func hasPrefix(subject string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(subject, p) {
			return true
		}
	}
	return false
}

// failureSubjects start the subjects of non-delivery reports (normalised, see normaliseSubject).
var failureSubjects = []string{
	"undeliverable:", "undeliverable mail", "undelivered mail returned to sender", "undelivered mail",
	"delivery status notification (failure)", "mail delivery failed", "mail delivery failure",
	"delivery failure", "delivery failed", "failure notice", "returned mail:", "message not delivered",
	"unzustellbar:", "nicht zustellbar:", "non remis:", "non distribuable:", "no se puede entregar:",
	"no entregado:", "non recapitabile:", "onbestelbaar:",
}

// delaySubjects start the subjects of notices that delivery is delayed but still being tried.
var delaySubjects = []string{
	"delivery status notification (delay)", "delayed mail (still being retried)", "delivery delayed:",
	"warning: could not send message", "mail delivery delayed", "zustellung verzögert:",
	"remise différée:", "entrega retrasada:",
}

// delayPhrases say, in a notice's text, that the server is still retrying.
var delayPhrases = []string{
	"delivery has been delayed", "delivery delayed", "still being retried", "will retry",
	"will keep trying", "will continue to try", "hasn't been delivered yet", "has not been delivered yet",
	"temporarily deferred",
}

// failurePhrases say, in a notice's text, that delivery failed for good.
var failurePhrases = []string{
	"delivery has failed", "could not be delivered", "couldn't be delivered", "wasn't delivered",
	"was not delivered", "undeliverable", "delivery to the following recipient", "address not found",
	"returned to sender", "permanent error", "permanent failure", "user unknown",
	"following address(es) failed", "message not delivered", "delivery failed",
}
