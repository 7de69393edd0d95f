package replies

import (
	"regexp"
	"strings"

	"golang.org/x/text/unicode/norm"
)

// autoReplyHeaders looks for headers that only automatic responders write and returns the rule that fired.
//
// X-Auto-Response-Suppress is deliberately not evidence: Outlook and Exchange put it on messages people
// send (meeting responses, messages sent through some clients and transport rules) to ask others not to
// auto-reply to them. It says what the sender wants back, not how the message was made, so a person's
// reply can carry it.
func autoReplyHeaders(in Inbound) (string, bool) {
	for _, v := range headerValues(in.Headers, "Auto-Submitted") {
		if tok := firstToken(v); tok != "" && tok != "no" {
			return RuleAutoSubmitted, true
		}
	}
	for _, name := range []string{"X-Autoreply", "X-Autorespond", "X-Autoresponder"} {
		for _, v := range headerValues(in.Headers, name) {
			switch firstToken(v) {
			case "no", "false", "0", "off":
			default:
				return RuleXAutoreply, true
			}
		}
	}
	if precedenceIsAutomatic(in.Headers) {
		return RulePrecedence, true
	}
	if hasHeader(in.Headers, "X-MS-Exchange-Generated-Message-Source") {
		return RuleExchangeGenerated, true
	}
	return "", false
}

// precedenceIsAutomatic decides the Precedence header.
//
// auto_reply is always evidence. bulk and junk are evidence only outside mailing lists: vacation programs
// (the Unix vacation tool, ticket systems) mark their answers that way, but a list also stamps
// Precedence: bulk on a real reply it relays, and such a message carries List-Id (RFC 2919) or List-Post
// (RFC 2369). Precedence: list is never evidence, as it is what lists put on people's messages.
func precedenceIsAutomatic(hs []Header) bool {
	onList := hasHeader(hs, "List-Id") || hasHeader(hs, "List-Post")
	for _, v := range headerValues(hs, "Precedence") {
		switch firstToken(v) {
		case "auto_reply", "auto-reply":
			return true
		case "bulk", "junk":
			if !onList {
				return true
			}
		}
	}
	return false
}

// firstToken returns the lower-cased first token of a structured header value, before any ';' parameter
// or '(' comment.
func firstToken(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.IndexAny(v, ";( \t\r\n"); i >= 0 {
		v = v[:i]
	}
	return strings.ToLower(v)
}

// replyPrefix matches the reply and forward prefixes mail clients put before a subject in the languages
// our customers write in, e.g. "Re:", "RE :", "AW:", "SV:", "RV:", "WG:", "TR:", "Fwd:", "Re[2]:".
var replyPrefix = regexp.MustCompile(`^(re|aw|antw|antwort|sv|vs|vl|odp|ynt|rif|r|réf|ref|tr|fw|fwd|wg|rv|enc|res|doorst|fs|回复|答复|回覆|返信|転送)(\[\d+\]|\(\d+\))?:`)

// tagPrefix matches a leading tag a gateway adds, like "[EXTERNAL]" or "[EXT]", which hides what follows.
var tagPrefix = regexp.MustCompile(`^\[[^\]]{1,40}\]\s*`)

// outOfOfficePhrases are subject fragments that automatic responders write, by language. They are matched
// anywhere in a normalised subject (lower case, NFC, single spaces, no space before a colon).
var outOfOfficePhrases = []string{
	// English (Exchange "Automatic reply:", Lotus "is out of the office", assorted vacation responders)
	"automatic reply", "auto reply", "auto-reply", "autoreply", "auto response", "autoresponse",
	"out of office", "out of the office", "vacation reply",
	// German
	"automatische antwort", "abwesenheitsnotiz", "automatische abwesenheitsnotiz",
	// French
	"réponse automatique", "reponse automatique", "absence du bureau", "absent du bureau",
	// Spanish
	"respuesta automática", "respuesta automatica", "fuera de la oficina", "fuera de oficina",
	// Italian, Dutch, Portuguese, Swedish/Danish/Norwegian
	"risposta automatica", "fuori sede", "automatisch antwoord", "afwezigheidsbericht",
	"resposta automática", "fora do escritório", "automatiskt svar", "automatisk svar", "autosvar",
}

// isOutOfOfficeSubject reports whether a subject is an automatic responder's, and not a person's reply to one.
func isOutOfOfficeSubject(subject string) bool {
	s := stripTags(normaliseSubject(subject))
	if replyPrefix.MatchString(s) {
		return false
	}
	for _, p := range outOfOfficePhrases {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

// maxTags bounds how many leading gateway tags are stripped from a subject.
const maxTags = 5

// stripTags removes up to maxTags leading gateway tags such as "[EXTERNAL]".
func stripTags(s string) string {
	for range maxTags {
		loc := tagPrefix.FindStringIndex(s)
		if loc == nil {
			break
		}
		s = s[loc[1]:]
	}
	return s
}

// normaliseSubject folds a subject so that typographic variants compare equal: NFC, lower case, any kind
// of space collapsed to one, and no space before a colon (French writes "Réponse automatique :").
func normaliseSubject(subject string) string {
	s := strings.ToLower(norm.NFC.String(subject))
	s = strings.Join(strings.FieldsFunc(s, isSpace), " ")
	return strings.ReplaceAll(s, " :", ":")
}

// isSpace reports ASCII and Unicode spaces, including the no-break spaces French typography uses.
func isSpace(r rune) bool {
	switch r {
	case ' ', '\t', '\r', '\n', '\v', '\f', '\u00a0', '\u2007', '\u202f', '\u2009', '\u3000':
		return true
	}
	return false
}
