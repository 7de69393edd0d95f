// Package replies tells a real reply to a followed message from an auto-reply or a bounce, and finds the
// message ids it refers to, from Microsoft Graph's message fields or from the raw MIME of the message.
// It only parses and classifies: matching, storage and the soft-bounce history belong to the caller.
package replies

// Kind says what sort of response an inbound message is, so replies, auto-replies and bounces are counted apart.
type Kind string

// The kinds of inbound response; every Result carries exactly one of them.
const (
	KindReply     Kind = "REPLY"      // KindReply is a message a person wrote.
	KindAutoReply Kind = "AUTO_REPLY" // KindAutoReply is machine-written but not a delivery failure (out of office, delay notice).
	KindBounce    Kind = "BOUNCE"     // KindBounce is a report that the message could not be delivered.
)

// Rule values name the signal that decided a Result, so callers and logs can tell why a message was sorted.
const (
	RuleDSNFailed          = "dsn-failed"              // RuleDSNFailed: a delivery-status report with Action: failed.
	RuleDSNDelayed         = "dsn-delayed"             // RuleDSNDelayed: a delivery-status report or notice that delivery is only delayed.
	RuleDSNDelivered       = "dsn-delivered"           // RuleDSNDelivered: a delivery-status report of success (delivered, relayed, expanded).
	RuleFailedRecipients   = "x-failed-recipients"     // RuleFailedRecipients: an X-Failed-Recipients header, as Exim writes.
	RuleExchangeNDR        = "x-ms-exchange-ndr"       // RuleExchangeNDR: Exchange's X-MS-Exchange-Message-Is-Ndr header.
	RuleNDRSubject         = "ndr-subject"             // RuleNDRSubject: a non-delivery subject such as "Undeliverable:".
	RuleNDRSender          = "ndr-sender"              // RuleNDRSender: sent by mailer-daemon or postmaster with failure text.
	RuleDeliveryReport     = "delivery-report"         // RuleDeliveryReport: typed multipart/report (delivery-status) with failure text but no parsed report.
	RuleAutoSubmitted      = "auto-submitted"          // RuleAutoSubmitted: an Auto-Submitted header other than "no" (RFC 3834).
	RuleXAutoreply         = "x-autoreply"             // RuleXAutoreply: an X-Autoreply, X-Autorespond or X-Autoresponder header.
	RulePrecedence         = "precedence"              // RulePrecedence: Precedence auto_reply, or bulk/junk outside a mailing list.
	RuleExchangeGenerated  = "x-ms-exchange-generated" // RuleExchangeGenerated: Exchange's X-MS-Exchange-Generated-Message-Source header.
	RuleOutOfOfficeSubject = "ooo-subject"             // RuleOutOfOfficeSubject: an out-of-office subject in one of the known languages.
	RuleReadReceipt        = "read-receipt"            // RuleReadReceipt: a read receipt (an MDN report, or Outlook's "Read:" subject).
	RuleNoAutomation       = "no-automation-signal"    // RuleNoAutomation: nothing marks the message as machine-written, so a person wrote it.
)

// SoftBounceLimit is how many soft bounces in a row Dynamics 365 counts as a hard bounce; the caller, which
// keeps each address's history, applies it, since one message cannot tell.
const SoftBounceLimit = 5

// Header is one message header as Graph's internetMessageHeaders lists it, kept in order.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Inbound is what classification needs from an inbound message, fillable from Graph's fields or ParseMIME.
type Inbound struct {
	Headers     []Header
	From        string // From is the sender's address only, without display name.
	Subject     string // Subject is decoded (no encoded-words).
	ContentType string // ContentType is the top-level type with parameters, e.g. multipart/report; report-type=delivery-status.
	Text        string // Text is the plain text of the body, HTML already stripped.
	Reports     []DeliveryStatus
	// ReturnedID is the Message-ID of the original message a bounce returns (its message/rfc822 or
	// text/rfc822-headers part), so a bounce without In-Reply-To can still be matched to what was sent.
	ReturnedID string
}

// DeliveryStatus is one per-recipient block of a message/delivery-status part (RFC 3464).
type DeliveryStatus struct {
	Recipient  string `json:"recipient"`
	Action     string `json:"action"`
	Status     string `json:"status"`
	Diagnostic string `json:"diagnostic,omitempty"`
}

// Bounce says who could not be reached and whether the failure is permanent, so the caller can stop sending.
type Bounce struct {
	Hard       bool     `json:"hard"`
	Recipients []string `json:"recipients"`
	Status     string   `json:"status,omitempty"`
	Diagnostic string   `json:"diagnostic,omitempty"`
}

// Result is the verdict on one inbound message: its kind, the rule that decided, and bounce details if any.
type Result struct {
	Kind   Kind    `json:"kind"`
	Rule   string  `json:"rule"`
	Bounce *Bounce `json:"bounce,omitempty"`
}
