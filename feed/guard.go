package feed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/engage-email/engage/followed"
)

// Destinations says which webhook URLs an operator allows beyond public https ones. Admins cannot
// widen it: a webhook to an internal address would let whoever registers it probe the network Engage
// runs in (SSRF).
type Destinations struct {
	AllowHTTP    bool // plain http URLs (tests, a receiver on the same host)
	AllowPrivate bool // loopback, private, link-local, unique-local and other non-public addresses
}

// Resolver looks host names up; net.DefaultResolver satisfies it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// MaxURL bounds a webhook URL.
const MaxURL = 2048

// nonPublic are ranges netip's predicates do not cover that no public receiver lives in.
func nonPublic() []netip.Prefix {
	return []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
		netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
		netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
		netip.MustParsePrefix("192.0.2.0/24"),    // documentation
		netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
		netip.MustParsePrefix("198.51.100.0/24"), // documentation
		netip.MustParsePrefix("203.0.113.0/24"),  // documentation
		netip.MustParsePrefix("240.0.0.0/4"),     // reserved, broadcast
		netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
		netip.MustParsePrefix("2001:db8::/32"),   // documentation
		netip.MustParsePrefix("100::/64"),        // discard
	}
}

// CheckAddr refuses an address a webhook must not reach unless private destinations are allowed.
func (d Destinations) CheckAddr(a netip.Addr) error {
	if d.AllowPrivate {
		return nil
	}
	a = a.Unmap()
	// NAT64 and 6to4 addresses carry an IPv4 address that is where the packets end up.
	if a.Is6() {
		b := a.As16()
		switch {
		case netip.MustParsePrefix("64:ff9b::/96").Contains(a):
			a = netip.AddrFrom4([4]byte(b[12:16]))
		case netip.MustParsePrefix("2002::/16").Contains(a):
			a = netip.AddrFrom4([4]byte(b[2:6]))
		}
	}
	var why string
	switch {
	case !a.IsValid():
		why = "not an address"
	case a.IsLoopback():
		why = "loopback"
	case a.IsPrivate():
		why = "private"
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		why = "link-local"
	case a.IsUnspecified():
		why = "unspecified"
	case a.IsMulticast(), a.IsInterfaceLocalMulticast():
		why = "multicast"
	default:
		for _, p := range nonPublic() {
			if p.Contains(a) {
				why = "not public"
			}
		}
	}
	if why != "" {
		return fmt.Errorf("%w: the address %s is %s", errRefused, a, why)
	}
	return nil
}

var errRefused = errors.New("destination refused")

// CheckURL validates a webhook URL as registered: absolute https (http only when allowed), a host,
// no credentials or fragment, and every address the host resolves to allowed. The same check runs
// again on every connection, since what a name resolves to can change after registration.
func (d Destinations) CheckURL(ctx context.Context, r Resolver, raw string) (*url.URL, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: webhook URL %s", followed.ErrBadInput, fmt.Sprintf(format, args...))
	}
	if len(raw) > MaxURL {
		return nil, bad("is %d bytes, over the limit of %d", len(raw), MaxURL)
	}
	if strings.TrimSpace(raw) != raw || strings.ContainsAny(raw, " \t\r\n") {
		return nil, bad("%q has spaces", raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, bad("%q is not a URL", raw)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && d.AllowHTTP:
	case u.Scheme == "http":
		return nil, bad("%q must use https", raw)
	default:
		return nil, bad("%q must be an absolute https URL", raw)
	}
	if u.Host == "" || u.Hostname() == "" || u.Opaque != "" {
		return nil, bad("%q has no host", raw)
	}
	if u.User != nil {
		return nil, bad("must not carry a user name or password: sign with the secret instead")
	}
	if u.Fragment != "" || u.RawFragment != "" {
		return nil, bad("%q must not have a #fragment", raw)
	}
	if p := u.Port(); p != "" {
		if n, err := net.LookupPort("tcp", p); err != nil || n == 0 {
			return nil, bad("%q has a bad port", raw)
		}
	}
	host := u.Hostname()
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		addrs, err = r.LookupNetIP(lctx, "ip", host)
		cancel()
		if err != nil || len(addrs) == 0 {
			return nil, bad("host %q does not resolve", host)
		}
	}
	for _, a := range addrs {
		if err := d.CheckAddr(a); err != nil {
			return nil, bad("host %q: %v (set ENGAGE_WEBHOOK_ALLOW_PRIVATE=true to allow it)", host, err)
		}
	}
	return u, nil
}

// control runs on every connection just before it is made, with the address actually dialled.
func (d Destinations) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot read the address %q", errRefused, address)
	}
	return d.CheckAddr(ap.Addr())
}

// Client returns the HTTP client deliveries use: every connection's address checked as it is dialled,
// no proxy from the environment (the check would see only the proxy), no redirects followed (a 3xx
// is a failure, so a receiver cannot bounce Engage elsewhere), and timeouts on every step.
func (d Destinations) Client(timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Control: d.control}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   timeout,
			ResponseHeaderTimeout: timeout,
			MaxIdleConns:          64,
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
