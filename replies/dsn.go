package replies

import (
	"strings"
)

// parseDeliveryStatus reads the per-recipient blocks of a message/delivery-status body (RFC 3464): groups
// of fields separated by blank lines, the first describing the reporting server. A block counts when it has
// an Action, Status or recipient field; malformed lines are skipped rather than failing the report.
func parseDeliveryStatus(body string) []DeliveryStatus {
	body = strings.ReplaceAll(body, "\r\n", "\n")
	var out []DeliveryStatus
	for _, group := range strings.Split(body, "\n\n") {
		if len(out) >= maxRecipients {
			break
		}
		fields := parseFields(group)
		if fields["action"] == "" && fields["status"] == "" && fields["final-recipient"] == "" &&
			fields["original-recipient"] == "" {
			continue
		}
		rcpt := recipientField(fields["original-recipient"])
		if rcpt == "" {
			rcpt = recipientField(fields["final-recipient"])
		}
		status := enhancedCode(fields["status"], "245")
		if status == "" {
			status = clip(fields["status"], maxDiagnostic)
		}
		out = append(out, DeliveryStatus{
			Recipient:  rcpt,
			Action:     strings.ToLower(firstToken(fields["action"])),
			Status:     status,
			Diagnostic: clip(typedValue(fields["diagnostic-code"]), maxDiagnostic),
		})
	}
	return out
}

// parseFields reads "Name: value" lines with folded continuations into a map keyed by lower-case name,
// keeping the first occurrence of each field.
func parseFields(group string) map[string]string {
	parts := map[string][]string{}
	name := ""
	for _, line := range strings.Split(group, "\n") {
		if line == "" {
			continue
		}
		if (line[0] == ' ' || line[0] == '\t') && name != "" {
			parts[name] = append(parts[name], line)
			continue
		}
		n, v, ok := strings.Cut(line, ":")
		if !ok {
			name = ""
			continue
		}
		n = strings.ToLower(strings.TrimSpace(n))
		if _, dup := parts[n]; dup {
			name = ""
			continue
		}
		name = n
		parts[n] = []string{v}
	}
	fields := make(map[string]string, len(parts))
	for n, p := range parts {
		fields[n] = unfold(strings.Join(p, " "))
	}
	return fields
}

// typedValue drops the address or diagnostic type before ';', as in "rfc822; a@b" or "smtp; 550 ...".
func typedValue(v string) string {
	if t, rest, ok := strings.Cut(v, ";"); ok && !strings.ContainsAny(t, " <@") {
		return strings.TrimSpace(rest)
	}
	return strings.TrimSpace(v)
}

// recipientField reads the address from an Original-Recipient or Final-Recipient value.
func recipientField(v string) string {
	a := strings.Trim(typedValue(v), "<> ")
	if !strings.Contains(a, "@") {
		return ""
	}
	return a
}
