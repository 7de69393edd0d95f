package machines

import (
	"net/netip"
	"time"
)

// Reason says why an event was told apart from an ordinary person's, so reports can group by cause.
type Reason string

// The reasons a label can carry; the empty Reason is a plain person.
const (
	ReasonNone         Reason = ""
	ReasonApplePrivacy Reason = "APPLE_PRIVACY_PROXY"
	ReasonScanner      Reason = "SECURITY_SCANNER"
	ReasonPrefetch     Reason = "PREFETCH"
	ReasonProxied      Reason = "PROXIED"
)

// Names of the rules built into the classifier (static rules come from the rules file).
const (
	RuleHoneypot        = "honeypot"
	RuleHoneypotVisitor = "honeypot-visitor"
	RuleClickAfterSend  = "click-after-send"
	RuleClickBurst      = "click-burst"
	RulePrefetch        = "prefetch-after-send"
)

// machineReason reports whether events with this reason were made by a machine; PROXIED is a
// person reading through a proxy.
func machineReason(r Reason) bool {
	switch r {
	case ReasonApplePrivacy, ReasonScanner, ReasonPrefetch:
		return true
	default:
		return false
	}
}

// validReason reports whether r is one of the reasons above.
func validReason(r Reason) bool {
	switch r {
	case ReasonNone, ReasonApplePrivacy, ReasonScanner, ReasonPrefetch, ReasonProxied:
		return true
	default:
		return false
	}
}

// Label is the verdict on one event, stored with it so counts can leave machines out.
type Label struct {
	Machine bool
	Reason  Reason
	Rule    string // the rule that fired; "" for a plain person
}

// Human reports whether the label is a plain person with no rule attached.
func (l Label) Human() bool { return !l.Machine && l.Reason == ReasonNone }

// String renders a label for reports: "human", or machine/reason/rule.
func (l Label) String() string {
	if l.Human() {
		return "human"
	}
	kind := "human"
	if l.Machine {
		kind = "machine"
	}
	return kind + "/" + string(l.Reason) + "/" + l.Rule
}

// Kind is what a hit asked for, because rules differ for pixels and links.
type Kind int

// The kinds of hit; attachment clicks are Clicks.
const (
	Open Kind = iota + 1
	Click
	Honeypot
)

// String names the kind as the rules file and corpus spell it.
func (k Kind) String() string {
	switch k {
	case Open:
		return "open"
	case Click:
		return "click"
	case Honeypot:
		return "honeypot"
	default:
		return "unknown"
	}
}

// parseKind reads a kind as the rules file and corpus spell it.
func parseKind(s string) (Kind, bool) {
	switch s {
	case "open":
		return Open, true
	case "click":
		return Click, true
	case "honeypot":
		return Honeypot, true
	default:
		return 0, false
	}
}

// Hit is one tracking request as the classifier needs to see it.
type Hit struct {
	ID        string     // the caller's id for the event, used in Relabel; may be empty
	Kind      Kind       // Open, Click or Honeypot
	Method    string     // GET or HEAD
	IP        netip.Addr // client address after trusted proxies
	UserAgent string
	Link      string    // which link was clicked (clicks only); bursts count distinct links
	At        time.Time // when the request arrived; zero means the classifier's now
	SentAt    time.Time // when the message was sent; zero if unknown
	Visitor   string    // caller's stable key for "the same client"; empty skips multi-event rules
}

// Relabel names an earlier event that a later one showed to be a machine's.
type Relabel struct {
	ID    string
	Label Label
}
