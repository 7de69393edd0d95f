package replies

import "strings"

// IsHardStatus reports whether an enhanced status code (RFC 3463), alone or inside text such as
// "550 5.1.1 user unknown", means the address itself cannot be reached, so sending to it should stop.
//
// Class 5 (permanent) is hard, except where RFC 3463 or the provider says the failure is about the message
// or the sender rather than the address: X.2.2 mailbox full (which Dynamics 365 counts as soft), X.2.3 and
// X.3.4 message too big, X.4.7 delivery time expired, and X.7.x security or policy refusals (the address
// exists but refused this message). Class 4 (transient) is never hard; repeated soft bounces turn hard by
// SoftBounceLimit, which the caller applies. Text with no code is not hard.
func IsHardStatus(status string) bool {
	code := enhancedCode(status, "5")
	if code == "" {
		return false
	}
	_, rest, _ := strings.Cut(code, ".")
	subject, detail, _ := strings.Cut(rest, ".")
	switch subject + "." + detail {
	case "2.2", "2.3", "3.4", "4.7":
		return false
	}
	return subject != "7"
}

// enhancedCode finds the first enhanced status code class.subject.detail in s whose class is one of the
// bytes in classes, skipping look-alikes inside longer dotted numbers such as IP or version numbers.
func enhancedCode(s, classes string) string {
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(classes, s[i]) < 0 || i+1 >= len(s) || s[i+1] != '.' {
			continue
		}
		if i > 0 && (isDigit(s[i-1]) || s[i-1] == '.' || isLetter(s[i-1])) {
			continue
		}
		j := i + 2
		n1 := digitsAt(s, j)
		if n1 == 0 || n1 > 3 || j+n1 >= len(s) || s[j+n1] != '.' {
			continue
		}
		k := j + n1 + 1
		n2 := digitsAt(s, k)
		if n2 == 0 || n2 > 3 {
			continue
		}
		end := k + n2
		if end < len(s) && (isDigit(s[end]) || (s[end] == '.' && end+1 < len(s) && isDigit(s[end+1])) || isLetter(s[end])) {
			continue
		}
		return s[i:end]
	}
	return ""
}

// basicCode finds the first three-digit SMTP reply code of class 4 or 5 that starts a word, like "550" in
// "host said: 550 user unknown", for reports that carry no enhanced code.
func basicCode(s string) string {
	for i := 0; i+3 <= len(s); i++ {
		if (s[i] != '4' && s[i] != '5') || !isDigit(s[i+1]) || !isDigit(s[i+2]) {
			continue
		}
		if i > 0 && (isDigit(s[i-1]) || isLetter(s[i-1]) || s[i-1] == '.') {
			continue
		}
		if i+3 < len(s) && s[i+3] != ' ' && s[i+3] != '-' {
			continue
		}
		return s[i : i+3]
	}
	return ""
}

// digitsAt counts the ASCII digits at s[i:].
func digitsAt(s string, i int) int {
	n := 0
	for i+n < len(s) && isDigit(s[i+n]) {
		n++
	}
	return n
}

func isDigit(b byte) bool  { return '0' <= b && b <= '9' }
func isLetter(b byte) bool { return ('a' <= b && b <= 'z') || ('A' <= b && b <= 'Z') }

// judge decides the status code and hardness of one failure from its Status field and diagnostic text.
// Without an enhanced code it falls back on the basic SMTP code (552 is "mailbox full", so soft) and then
// on well-known phrases; with no evidence at all the failure is soft, because marking an address hard
// stops all mail to it and needs evidence.
func judge(status, diagnostic string) (string, bool) {
	if code := enhancedCode(status, "45"); code != "" {
		return code, IsHardStatus(code)
	}
	if code := enhancedCode(diagnostic, "45"); code != "" {
		return code, IsHardStatus(code)
	}
	if basic := basicCode(diagnostic); basic != "" {
		return "", basic[0] == '5' && basic != "552"
	}
	return "", containsAny(strings.ToLower(diagnostic), hardPhrases)
}

// hardPhrases are texts that say the address does not exist, for failures that give no code.
var hardPhrases = []string{
	"address not found", "user unknown", "unknown user", "no such user", "no such recipient",
	"does not exist", "doesn't exist", "recipient not found", "domain name not found",
	"couldn't be found", "could not be found", "recipient address rejected",
}

// containsAny reports whether s contains one of the fragments.
func containsAny(s string, fragments []string) bool {
	for _, f := range fragments {
		if strings.Contains(s, f) {
			return true
		}
	}
	return false
}
