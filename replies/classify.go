package replies

import (
	"mime"
	"strings"
)

// Classify sorts an inbound message into a reply, an auto-reply or a bounce.
//
// Bounce evidence is tested first, because bounces are machine-written too and usually carry
// Auto-Submitted; then auto-reply evidence from headers, which a person's mail client does not write; then
// out-of-office subjects, which only count when the subject is not itself a reply or forward ("Re:
// Automatic reply: ..." is a person answering an auto-reply). Anything else is a person's reply.
func Classify(in Inbound) Result {
	if r, ok := classifyBounce(in); ok {
		return r
	}
	if rule, ok := autoReplyHeaders(in); ok {
		return Result{Kind: KindAutoReply, Rule: rule}
	}
	if isOutOfOfficeSubject(in.Subject) {
		return Result{Kind: KindAutoReply, Rule: RuleOutOfOfficeSubject}
	}
	return Result{Kind: KindReply, Rule: RuleNoAutomation}
}

// headerValues returns the values of every header called name, in order, matching names without case.
func headerValues(hs []Header, name string) []string {
	var vs []string
	for _, h := range hs {
		if strings.EqualFold(strings.TrimSpace(h.Name), name) {
			vs = append(vs, h.Value)
		}
	}
	return vs
}

// hasHeader reports whether any header called name is present.
func hasHeader(hs []Header, name string) bool {
	return len(headerValues(hs, name)) > 0
}

// isDeliveryReport reports whether a Content-Type is multipart/report; report-type=delivery-status (or the
// internationalised global-delivery-status of RFC 6533).
func isDeliveryReport(contentType string) bool {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "multipart/report" {
		return false
	}
	rt := strings.ToLower(params["report-type"])
	return rt == "delivery-status" || rt == "global-delivery-status"
}

// unfold turns a folded header value into one line with single spaces.
func unfold(v string) string {
	return strings.Join(strings.Fields(v), " ")
}
