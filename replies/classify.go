package replies

import (
	"mime"
	"regexp"
	"strings"
)

// Classify sorts an inbound message into a reply, an auto-reply or a bounce.
//
// Bounce evidence is tested first, because bounces are machine-written too and usually carry
// Auto-Submitted; then auto-reply evidence from headers, which a person's mail client does not write; then
// read receipts, which mail clients write without Auto-Submitted; then
// out-of-office subjects, which only count when the subject is not itself a reply or forward ("Re:
// Automatic reply: ..." is a person answering an auto-reply). Anything else is a person's reply.
func Classify(in Inbound) Result {
	if r, ok := classifyBounce(in); ok {
		return r
	}
	if isReadReceipt(in) {
		return Result{Kind: KindAutoReply, Rule: RuleReadReceipt}
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

// isReadReceipt reports whether in is a read (or not-read) receipt: a disposition-notification report
// (RFC 8098), or, as Graph hands over receipts between Exchange mailboxes without one, a subject that
// starts with a receipt prefix of Outlook's languages. A person's reply starts with "Re:" instead.
func isReadReceipt(in Inbound) bool {
	if mt, params, err := mime.ParseMediaType(in.ContentType); err == nil && mt == "multipart/report" &&
		strings.EqualFold(params["report-type"], "disposition-notification") {
		return true
	}
	return readReceiptSubject.MatchString(stripTags(normaliseSubject(in.Subject)))
}

// readReceiptSubject matches the prefixes Outlook gives read and not-read receipts, by language, in a
// normalised subject (lower case, no space before the colon).
var readReceiptSubject = regexp.MustCompile(`^(read|not read|gelesen|ungelesen|nicht gelesen|lu|non lu|leído|no leído|` +
	`letto|non letto|gelezen|niet gelezen|läst|oläst|læst|ulæst|lest|ulest|luettu|lukematon|lido|não lido|` +
	`przeczytane|nieprzeczytane|прочитано|не прочитано|已读|未读|開封済み|未開封):`)

// unfold turns a folded header value into one line with single spaces.
func unfold(v string) string {
	return strings.Join(strings.Fields(v), " ")
}
