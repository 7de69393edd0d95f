package machines

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"
)

//go:embed default_rules.json
var defaultRulesJSON []byte

// Rules is a parsed, immutable rules file; a Classifier swaps whole Rules values, never edits one.
type Rules struct {
	clickAfterSend    time.Duration
	clickBurst        time.Duration
	clickBurstLinks   int
	prefetchAfterSend time.Duration
	visitorTTL        time.Duration
	maxVisitors       int
	maxEvents         int
	static            []rule
}

// rule is one static rule: every condition given must hold, any value within a condition may.
type rule struct {
	name          string
	reason        Reason
	kinds         uint8 // bit per Kind; 0 matches every kind
	methods       []string
	agentExact    []string
	agentContains []string // lower case
	agentEmpty    bool
	networks      []netip.Prefix
}

// DefaultRules returns the built-in rules, used when no rules file is given or it is unusable.
//
// Static rules (the file's "rules" list, first match wins) judge one request by method, agent and
// network; each names its source in the file. The built-in ones and their signals:
//   - head-request: HEAD transfers no content, so only link checkers send it (RFC 9110 9.3.2).
//   - apple-mpp-agent: Apple Mail Privacy Protection fetches images with the bare agent
//     "Mozilla/5.0" (Mailgun and SendGrid MPP notes).
//   - apple-proxy-range: opens from Apple's 17.0.0.0/8, through which MPP relays image loads
//     (SocketLabs); Apple's published iCloud Private Relay egress list can be appended.
//   - scanner-agent, library-agent, empty-agent: gateway agents (Proofpoint, Barracuda), scripted
//     HTTP clients, and no agent at all, which browsers never do but Safe Links often does.
//   - microsoft-eop-range, barracuda-range, mimecast-range: the mail-flow networks Microsoft,
//     Barracuda and Mimecast publish for their gateways (Microsoft's only for clicks).
//   - gmail-image-proxy: Gmail loads images through GoogleImageProxy when the person opens the
//     message: a person, labelled PROXIED, device unknown.
//
// Rules built into the classifier, tuned by the file's "windows":
//   - click-after-send: a click within click_after_send of sending is a gateway scanning on
//     delivery (SendGrid, Act-On, Insider notes on bot clicks).
//   - click-burst: click_burst_links distinct links from one visitor within click_burst is a
//     scanner following every link; the burst's earlier clicks are relabelled.
//   - honeypot, honeypot-visitor: a visitor following the invisible honeypot link is a scanner;
//     its events within visitor_ttl before are relabelled, those after labelled on arrival.
//   - prefetch-after-send: an open within prefetch_after_send of sending that no human activity
//     follows is a prefetch, decided afterwards by Classifier.Prefetch.
func DefaultRules() *Rules {
	r, err := ParseRules(defaultRulesJSON)
	if err != nil {
		// The embedded file is part of the build and tested; failing here is a build defect.
		panic(fmt.Sprintf("machines: built-in rules do not parse: %v", err))
	}
	return r
}

// DefaultRulesJSON returns the built-in rules file, a starting point for a custom one.
func DefaultRulesJSON() []byte { return bytes.Clone(defaultRulesJSON) }

// ReadRulesFile reads and parses a rules file.
func ReadRulesFile(path string) (*Rules, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read rules file: %w", err)
	}
	r, err := ParseRules(data)
	if err != nil {
		return nil, fmt.Errorf("rules file %s: %w", path, err)
	}
	return r, nil
}

// Len returns the number of static rules, for log lines.
func (r *Rules) Len() int { return len(r.static) }

// VisitorTTL returns how long a visitor's events stay related, so callers can size their own windows.
func (r *Rules) VisitorTTL() time.Duration { return r.visitorTTL }

// PrefetchAfterSend returns how soon after sending an open may be a prefetch, so a caller can read
// only the opens Classifier.Prefetch could label.
func (r *Rules) PrefetchAfterSend() time.Duration { return r.prefetchAfterSend }

// duration is a time.Duration spelt as in Go ("10s", "1m30s") in JSON.
type duration time.Duration

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"10s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("parse duration %q: %w", s, err)
	}
	*d = duration(v)
	return nil
}

type rulesFile struct {
	Windows *windowsJSON `json:"windows"`
	Rules   []ruleJSON   `json:"rules"`
}

type windowsJSON struct {
	ClickAfterSend      duration `json:"click_after_send"`
	ClickBurst          duration `json:"click_burst"`
	ClickBurstLinks     int      `json:"click_burst_links"`
	PrefetchAfterSend   duration `json:"prefetch_after_send"`
	VisitorTTL          duration `json:"visitor_ttl"`
	MaxVisitors         int      `json:"max_visitors"`
	MaxEventsPerVisitor int      `json:"max_events_per_visitor"`
}

type ruleJSON struct {
	Name          string   `json:"name"`
	Reason        Reason   `json:"reason"`
	Source        string   `json:"source"`
	Kinds         []string `json:"kinds"`
	Methods       []string `json:"methods"`
	AgentExact    []string `json:"agent_exact"`
	AgentContains []string `json:"agent_contains"`
	AgentEmpty    bool     `json:"agent_empty"`
	Networks      []string `json:"networks"`
}

// Bounds that keep a bad file from exhausting memory or disabling the windows.
const (
	maxWindow      = 24 * time.Hour
	maxVisitorsCap = 10_000_000
	maxEventsCap   = 10_000
	maxBurstLinks  = 1_000
	maxRuleCount   = 10_000
)

// ParseRules parses and checks a rules file (the format of DefaultRulesJSON).
func ParseRules(data []byte) (*Rules, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f rulesFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("decode rules: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("decode rules: trailing data after the JSON object")
	}
	if f.Windows == nil {
		return nil, errors.New("rules: \"windows\" is required")
	}
	if f.Rules == nil {
		return nil, errors.New("rules: \"rules\" is required (use [] for none)")
	}
	if len(f.Rules) > maxRuleCount {
		return nil, fmt.Errorf("rules: %d rules, at most %d", len(f.Rules), maxRuleCount)
	}
	w := f.Windows
	r := &Rules{
		clickAfterSend:    time.Duration(w.ClickAfterSend),
		clickBurst:        time.Duration(w.ClickBurst),
		clickBurstLinks:   w.ClickBurstLinks,
		prefetchAfterSend: time.Duration(w.PrefetchAfterSend),
		visitorTTL:        time.Duration(w.VisitorTTL),
		maxVisitors:       w.MaxVisitors,
		maxEvents:         w.MaxEventsPerVisitor,
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"click_after_send", r.clickAfterSend},
		{"click_burst", r.clickBurst},
		{"prefetch_after_send", r.prefetchAfterSend},
		{"visitor_ttl", r.visitorTTL},
	} {
		if d.v <= 0 || d.v > maxWindow {
			return nil, fmt.Errorf("rules: windows.%s must be within (0, %s], got %s", d.name, maxWindow, d.v)
		}
	}
	for _, n := range []struct {
		name   string
		v, max int
	}{
		{"click_burst_links", r.clickBurstLinks, maxBurstLinks},
		{"max_visitors", r.maxVisitors, maxVisitorsCap},
		{"max_events_per_visitor", r.maxEvents, maxEventsCap},
	} {
		if n.v < 1 || n.v > n.max {
			return nil, fmt.Errorf("rules: windows.%s must be within [1, %d], got %d", n.name, n.max, n.v)
		}
	}
	if r.clickBurstLinks < 2 {
		return nil, errors.New("rules: windows.click_burst_links must be at least 2 (one click is not a burst)")
	}
	seen := make(map[string]bool, len(f.Rules))
	for i, rj := range f.Rules {
		ru, err := rj.compile()
		if err != nil {
			return nil, fmt.Errorf("rules[%d] %q: %w", i, rj.Name, err)
		}
		if seen[ru.name] {
			return nil, fmt.Errorf("rules[%d]: duplicate rule name %q", i, ru.name)
		}
		seen[ru.name] = true
		r.static = append(r.static, ru)
	}
	return r, nil
}

// compile checks one rule and turns it into its matching form.
func (rj ruleJSON) compile() (rule, error) {
	ru := rule{name: strings.TrimSpace(rj.Name), reason: rj.Reason, agentEmpty: rj.AgentEmpty}
	if ru.name == "" {
		return rule{}, errors.New("name is required")
	}
	switch ru.name {
	case RuleHoneypot, RuleHoneypotVisitor, RuleClickAfterSend, RuleClickBurst, RulePrefetch:
		return rule{}, fmt.Errorf("name %q is reserved for a built-in rule", ru.name)
	}
	switch ru.reason {
	case ReasonApplePrivacy, ReasonScanner, ReasonProxied:
	case ReasonPrefetch:
		return rule{}, errors.New("reason PREFETCH is decided by the prefetch window, not a static rule")
	default:
		return rule{}, fmt.Errorf("reason %q: want APPLE_PRIVACY_PROXY, SECURITY_SCANNER or PROXIED", ru.reason)
	}
	for _, k := range rj.Kinds {
		kind, ok := parseKind(k)
		if !ok {
			return rule{}, fmt.Errorf("kind %q: want open, click or honeypot", k)
		}
		ru.kinds |= 1 << uint(kind)
	}
	for _, m := range rj.Methods {
		m = strings.ToUpper(strings.TrimSpace(m))
		if m == "" {
			return rule{}, errors.New("empty method")
		}
		ru.methods = append(ru.methods, m)
	}
	for _, a := range rj.AgentExact {
		if strings.TrimSpace(a) == "" {
			return rule{}, errors.New("empty agent_exact entry (use agent_empty)")
		}
		ru.agentExact = append(ru.agentExact, strings.TrimSpace(a))
	}
	for _, a := range rj.AgentContains {
		a = strings.ToLower(strings.TrimSpace(a))
		if a == "" {
			return rule{}, errors.New("empty agent_contains entry")
		}
		ru.agentContains = append(ru.agentContains, a)
	}
	for _, n := range rj.Networks {
		p, err := netip.ParsePrefix(strings.TrimSpace(n))
		if err != nil {
			return rule{}, fmt.Errorf("network: %w", err)
		}
		ru.networks = append(ru.networks, p.Masked())
	}
	if len(ru.methods) == 0 && !ru.hasAgent() && len(ru.networks) == 0 {
		return rule{}, errors.New("needs at least one of methods, agent_exact, agent_contains, agent_empty, networks")
	}
	return ru, nil
}

func (ru *rule) hasAgent() bool {
	return ru.agentEmpty || len(ru.agentExact) > 0 || len(ru.agentContains) > 0
}

// match reports whether the hit meets every condition of the rule; lowerUA is the agent in lower case.
func (ru *rule) match(h *Hit, ua, lowerUA string, ip netip.Addr) bool {
	if ru.kinds != 0 && ru.kinds&(1<<uint(h.Kind)) == 0 {
		return false
	}
	if len(ru.methods) > 0 && !ru.matchMethod(h.Method) {
		return false
	}
	if ru.hasAgent() && !ru.matchAgent(ua, lowerUA) {
		return false
	}
	if len(ru.networks) > 0 && !ru.matchNetwork(ip) {
		return false
	}
	return true
}

func (ru *rule) matchMethod(method string) bool {
	if method == "" {
		method = "GET"
	}
	for _, m := range ru.methods {
		if strings.EqualFold(m, method) {
			return true
		}
	}
	return false
}

func (ru *rule) matchAgent(ua, lowerUA string) bool {
	if ru.agentEmpty && ua == "" {
		return true
	}
	for _, a := range ru.agentExact {
		if ua == a {
			return true
		}
	}
	for _, a := range ru.agentContains {
		if strings.Contains(lowerUA, a) {
			return true
		}
	}
	return false
}

func (ru *rule) matchNetwork(ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	for _, p := range ru.networks {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// staticLabel applies the static rules in order; the zero Label means none matched.
func (r *Rules) staticLabel(h *Hit) Label {
	ua := strings.TrimSpace(h.UserAgent)
	lowerUA := ""
	for i := range r.static {
		if len(r.static[i].agentContains) > 0 {
			lowerUA = strings.ToLower(ua)
			break
		}
	}
	ip := h.IP.Unmap()
	for i := range r.static {
		ru := &r.static[i]
		if ru.match(h, ua, lowerUA, ip) {
			return Label{Machine: machineReason(ru.reason), Reason: ru.reason, Rule: ru.name}
		}
	}
	return Label{}
}
