package replies

import (
	"regexp"
	"strings"
)

// addressPattern matches a plain email address in free text.
var addressPattern = regexp.MustCompile("[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+")

// inlineRecipient matches the sentences in which Gmail, Exchange Online and Postfix name the failed
// recipient: "wasn't delivered to x@y", "Your message to x@y couldn't be delivered", "<x@y>: host ...".
var inlineRecipient = []*regexp.Regexp{
	regexp.MustCompile(`(?i)(?:wasn't|was not|couldn't be|could not be) delivered to\s+<?(` + addressPattern.String() + `)`),
	regexp.MustCompile(`(?i)your message to\s+<?(` + addressPattern.String() + `)>?\s+(?:couldn't|could not|can't|cannot) be delivered`),
	regexp.MustCompile(`(?m)^\s*<(` + addressPattern.String() + `)>:`),
}

// listIntro matches the sentences after which Exchange, old Gmail and Exim list the failed recipients on
// the next non-empty line.
var listIntro = regexp.MustCompile(`(?i)(?:delivery has failed to these recipients or groups:|` +
	`delivery to the following recipients? failed[^\n]*|the following address\(es\) failed:|` +
	`the following recipients failed[^\n]*|could not be delivered to the following recipients[^\n]*)`)

// failedRecipientsIn reads the failed recipients from a bounce's human-readable text. It only trusts the
// places the known formats name them; any other address in the text may be the sender's own.
func failedRecipientsIn(text string) []string {
	var out []string
	seen := map[string]bool{}
	add := func(a string) {
		a = strings.Trim(a, ".")
		if a != "" && !seen[strings.ToLower(a)] {
			seen[strings.ToLower(a)] = true
			out = append(out, a)
		}
	}
	for _, re := range inlineRecipient {
		for _, m := range re.FindAllStringSubmatch(text, maxRecipients) {
			add(m[1])
		}
	}
	for _, loc := range listIntro.FindAllStringIndex(text, maxRecipients) {
		for _, a := range addressesIn(firstNonEmptyLine(text[loc[1]:])) {
			add(a)
		}
	}
	if out == nil {
		return []string{}
	}
	return out
}

// maxRecipients bounds how many recipients are read from one text, whatever its size.
const maxRecipients = 100

// firstNonEmptyLine returns the first line of s (starting with the rest of the current one) that has
// text, reading no further than it needs.
func firstNonEmptyLine(s string) string {
	for s != "" {
		line, rest, _ := strings.Cut(s, "\n")
		if t := strings.TrimSpace(line); t != "" {
			return t
		}
		s = rest
	}
	return ""
}

// addressesIn lists the distinct addresses in s, in order.
func addressesIn(s string) []string {
	var out []string
	seen := map[string]bool{}
	for _, a := range addressPattern.FindAllString(s, maxRecipients) {
		a = strings.Trim(a, ".")
		if !seen[strings.ToLower(a)] {
			seen[strings.ToLower(a)] = true
			out = append(out, a)
		}
	}
	return out
}
