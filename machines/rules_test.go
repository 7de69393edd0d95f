package machines

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestDefaultRulesParse(t *testing.T) {
	r := DefaultRules()
	if r.Len() == 0 {
		t.Fatal("built-in rules have no static rules")
	}
	if r.VisitorTTL() <= 0 {
		t.Fatalf("built-in visitor TTL %s", r.VisitorTTL())
	}
}

// minimalRules builds a rules file around the given rules list, with valid windows.
func minimalRules(rules string) string {
	return `{"windows": {"click_after_send": "10s", "click_burst": "2s", "click_burst_links": 2,
		"prefetch_after_send": "15s", "visitor_ttl": "10m", "max_visitors": 100, "max_events_per_visitor": 8},
		"rules": ` + rules + `}`
}

func TestParseRulesErrors(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		wantErr string
	}{
		{"not json", `{`, "decode rules"},
		{"trailing data", minimalRules(`[]`) + `{}`, "trailing data"},
		{"unknown field", `{"windows": {}, "rules": [], "extra": 1}`, "unknown field"},
		{"no windows", `{"rules": []}`, `"windows" is required`},
		{"no rules", `{"windows": {"click_after_send": "10s"}}`, `"rules" is required`},
		{"zero window", strings.Replace(minimalRules(`[]`), `"click_burst": "2s"`, `"click_burst": "0s"`, 1), "windows.click_burst"},
		{"bad duration", strings.Replace(minimalRules(`[]`), `"10m"`, `"ten minutes"`, 1), "parse duration"},
		{"duration not string", strings.Replace(minimalRules(`[]`), `"10m"`, `600`, 1), "duration must be a string"},
		{"burst of one", strings.Replace(minimalRules(`[]`), `"click_burst_links": 2`, `"click_burst_links": 1`, 1), "at least 2"},
		{"no visitors", strings.Replace(minimalRules(`[]`), `"max_visitors": 100`, `"max_visitors": 0`, 1), "windows.max_visitors"},
		{"rule without name", minimalRules(`[{"reason": "SECURITY_SCANNER", "methods": ["HEAD"]}]`), "name is required"},
		{"rule named like a built-in", minimalRules(`[{"name": "honeypot", "reason": "SECURITY_SCANNER", "methods": ["HEAD"]}]`), "reserved"},
		{"bad reason", minimalRules(`[{"name": "x", "reason": "ROBOT", "methods": ["HEAD"]}]`), "reason"},
		{"prefetch reason", minimalRules(`[{"name": "x", "reason": "PREFETCH", "methods": ["HEAD"]}]`), "PREFETCH"},
		{"no conditions", minimalRules(`[{"name": "x", "reason": "SECURITY_SCANNER"}]`), "needs at least one"},
		{"bad kind", minimalRules(`[{"name": "x", "reason": "SECURITY_SCANNER", "kinds": ["visit"], "methods": ["HEAD"]}]`), "kind"},
		{"bad network", minimalRules(`[{"name": "x", "reason": "SECURITY_SCANNER", "networks": ["10.0.0.0/33"]}]`), "network"},
		{"empty agent entry", minimalRules(`[{"name": "x", "reason": "SECURITY_SCANNER", "agent_contains": [" "]}]`), "empty agent_contains"},
		{"duplicate names", minimalRules(`[{"name": "x", "reason": "SECURITY_SCANNER", "methods": ["HEAD"]},
			{"name": "x", "reason": "SECURITY_SCANNER", "agent_empty": true}]`), "duplicate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseRules([]byte(tt.data))
			if err == nil {
				t.Fatalf("ParseRules succeeded with %d rules, want error containing %q", r.Len(), tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestParseRulesAcceptsEmptyRuleList(t *testing.T) {
	r, err := ParseRules([]byte(minimalRules(`[]`)))
	if err != nil {
		t.Fatalf("ParseRules: %v", err)
	}
	got := r.staticLabel(&Hit{Kind: Open, Method: "HEAD", UserAgent: "Mozilla/5.0"})
	if got != (Label{}) {
		t.Fatalf("no static rules, yet got %v", got)
	}
}

func TestStaticRules(t *testing.T) {
	const chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
	r := DefaultRules()
	tests := []struct {
		name string
		hit  Hit
		want Label
	}{
		{"head click", Hit{Kind: Click, Method: "HEAD", UserAgent: chrome}, Label{true, ReasonScanner, "head-request"}},
		{"head lower case", Hit{Kind: Open, Method: "head", UserAgent: chrome}, Label{true, ReasonScanner, "head-request"}},
		{"bare mozilla open", Hit{Kind: Open, UserAgent: "Mozilla/5.0"}, Label{true, ReasonApplePrivacy, "apple-mpp-agent"}},
		{"bare mozilla padded", Hit{Kind: Open, UserAgent: " Mozilla/5.0 "}, Label{true, ReasonApplePrivacy, "apple-mpp-agent"}},
		{"bare mozilla click is not MPP", Hit{Kind: Click, UserAgent: "Mozilla/5.0"}, Label{}},
		{"apple network open", Hit{Kind: Open, IP: netip.MustParseAddr("17.1.2.3"), UserAgent: chrome}, Label{true, ReasonApplePrivacy, "apple-proxy-range"}},
		{"apple network as 4in6", Hit{Kind: Open, IP: netip.MustParseAddr("::ffff:17.1.2.3"), UserAgent: chrome}, Label{true, ReasonApplePrivacy, "apple-proxy-range"}},
		{"apple network click is a person", Hit{Kind: Click, IP: netip.MustParseAddr("17.1.2.3"), UserAgent: chrome}, Label{}},
		{"scanner agent any case", Hit{Kind: Click, UserAgent: "Mozilla/5.0 (compatible; PROOFPOINT)"}, Label{true, ReasonScanner, "scanner-agent"}},
		{"library agent", Hit{Kind: Click, UserAgent: "Go-http-client/1.1"}, Label{true, ReasonScanner, "library-agent"}},
		{"empty agent", Hit{Kind: Click}, Label{true, ReasonScanner, "empty-agent"}},
		{"blank agent", Hit{Kind: Open, UserAgent: "   "}, Label{true, ReasonScanner, "empty-agent"}},
		{"eop click", Hit{Kind: Click, IP: netip.MustParseAddr("104.47.1.1"), UserAgent: chrome}, Label{true, ReasonScanner, "microsoft-eop-range"}},
		{"eop ipv6 click", Hit{Kind: Click, IP: netip.MustParseAddr("2a01:111:f403::1"), UserAgent: chrome}, Label{true, ReasonScanner, "microsoft-eop-range"}},
		{"eop open is not judged by range", Hit{Kind: Open, IP: netip.MustParseAddr("104.47.1.1"), UserAgent: chrome}, Label{}},
		{"barracuda open", Hit{Kind: Open, IP: netip.MustParseAddr("64.235.159.255"), UserAgent: chrome}, Label{true, ReasonScanner, "barracuda-range"}},
		{"just outside barracuda", Hit{Kind: Open, IP: netip.MustParseAddr("64.235.160.0"), UserAgent: chrome}, Label{}},
		{"mimecast click", Hit{Kind: Click, IP: netip.MustParseAddr("207.211.31.100"), UserAgent: chrome}, Label{true, ReasonScanner, "mimecast-range"}},
		{"gmail proxy open", Hit{Kind: Open, UserAgent: "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"}, Label{false, ReasonProxied, "gmail-image-proxy"}},
		{"plain chrome", Hit{Kind: Click, IP: netip.MustParseAddr("198.51.100.1"), UserAgent: chrome}, Label{}},
		{"no address", Hit{Kind: Click, UserAgent: chrome}, Label{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.staticLabel(&tt.hit); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func FuzzParseRules(f *testing.F) {
	f.Add(DefaultRulesJSON())
	f.Add([]byte(minimalRules(`[]`)))
	f.Add([]byte(minimalRules(`[{"name": "x", "reason": "PROXIED", "kinds": ["open"], "networks": ["::/0"]}]`)))
	f.Add([]byte(`{"windows": null, "rules": null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRules(data)
		if err != nil {
			return
		}
		// Whatever parses must label without panicking and keep its windows usable.
		if r.visitorTTL <= 0 || r.maxVisitors < 1 || r.maxEvents < 1 || r.clickBurstLinks < 2 {
			t.Fatalf("parsed rules with unusable windows: %+v", r)
		}
		c := NewClassifier(r, func() time.Time { return time.Unix(1_700_000_000, 0) })
		for _, k := range []Kind{Open, Click, Honeypot} {
			lbl, _ := c.Label(Hit{ID: "x", Kind: k, Visitor: "v", IP: netip.MustParseAddr("17.0.0.1"), UserAgent: "Mozilla/5.0"})
			if !validReason(lbl.Reason) || lbl.Machine != machineReason(lbl.Reason) {
				t.Fatalf("inconsistent label %v", lbl)
			}
		}
	})
}
