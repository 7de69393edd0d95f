package replies

import (
	"math"
	"slices"
	"strings"
)

// maxIDs bounds how many ids are read from one message's headers, since References can be very long.
const maxIDs = 200

// ReferencedIDs lists the message ids an inbound message refers to, so the caller can match them against
// the internetMessageId it recorded when sending: In-Reply-To first, then References newest first (the
// header lists a thread oldest first, the message answered last, so a reply in a thread of several
// followed messages goes to the one it answers), then the Message-ID of the original a bounce returns.
// Ids are normalised to "<id>" and listed once each.
func ReferencedIDs(in Inbound) []string {
	var out []string
	seen := map[string]bool{}
	add := func(ids []string) {
		for _, id := range ids {
			if len(out) < maxIDs && !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	for _, v := range headerValues(in.Headers, "In-Reply-To") {
		add(ParseMessageIDs(v))
	}
	var refs []string
	for _, v := range headerValues(in.Headers, "References") {
		refs = append(refs, parseIDs(v, maxReferences)...)
	}
	slices.Reverse(refs)
	add(refs)
	add(ParseMessageIDs(in.ReturnedID))
	if out == nil {
		return []string{}
	}
	return out
}

// ParseMessageIDs reads the message ids in an In-Reply-To, References or Message-ID value, tolerating
// folding, comments, old-style phrases ("Your message of ... <id>") and ids written without angle
// brackets, and returns each as "<id>" with any whitespace inside removed.
func ParseMessageIDs(value string) []string {
	return parseIDs(value, maxIDs)
}

// maxReferences bounds the ids read from References. They are all read, however long the thread,
// since the newest (the last) count most; the header's size bounds the work.
const maxReferences = math.MaxInt

// parseIDs is ParseMessageIDs reading up to limit ids.
func parseIDs(value string, limit int) []string {
	value = stripComments(value)
	var ids []string
	rest := value
	for len(ids) < limit {
		open := strings.IndexByte(rest, '<')
		if open < 0 {
			break
		}
		closing := strings.IndexByte(rest[open+1:], '>')
		if closing < 0 {
			break
		}
		inner := strings.Join(strings.Fields(rest[open+1:open+1+closing]), "")
		if inner != "" && !strings.ContainsAny(inner, "<") {
			ids = append(ids, "<"+inner+">")
		}
		rest = rest[open+1+closing+1:]
	}
	if len(ids) > 0 {
		return ids
	}
	// Some clients write bare ids; only tokens shaped like left@right can be ids among phrase words.
	for _, tok := range strings.FieldsFunc(value, func(r rune) bool { return r == ',' || isSpace(r) }) {
		tok = strings.Trim(tok, `"'<>;`)
		if at := strings.IndexByte(tok, '@'); at > 0 && at < len(tok)-1 && len(ids) < limit {
			ids = append(ids, "<"+tok+">")
		}
	}
	return ids
}

// stripComments removes RFC 5322 comments, "(like this)", which may nest, outside quoted strings.
func stripComments(v string) string {
	if !strings.Contains(v, "(") {
		return v
	}
	var b strings.Builder
	depth, quoted, escaped := 0, false, false
	for _, r := range v {
		switch {
		case escaped:
			escaped = false
			if depth > 0 {
				continue
			}
		case r == '\\':
			escaped = true
			if depth > 0 {
				continue
			}
		case r == '"' && depth == 0:
			quoted = !quoted
		case r == '(' && !quoted:
			depth++
			continue
		case r == ')' && !quoted && depth > 0:
			depth--
			continue
		case depth > 0:
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
