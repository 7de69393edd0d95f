package feed_test

import (
	"context"
	"errors"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/engage-email/engage/feed"
	"github.com/engage-email/engage/followed"
)

// names is a resolver with fixed answers: DNS is the outside world here, not our code.
type names map[string][]string

func (n names) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, a := range n[host] {
		out = append(out, netip.MustParseAddr(a))
	}
	if len(out) == 0 {
		return nil, errors.New("no such host")
	}
	return out, nil
}

func TestCheckAddr(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"93.184.216.34", true},
		{"2606:2800:220:1:248:1893:25c8:1946", true},
		{"127.0.0.1", false},
		{"::1", false},
		{"10.1.2.3", false},
		{"172.16.0.1", false},
		{"192.168.1.1", false},
		{"169.254.169.254", false}, // cloud metadata
		{"fe80::1", false},
		{"fd00::1", false},
		{"0.0.0.0", false},
		{"::", false},
		{"100.64.0.1", false},
		{"224.0.0.1", false},
		{"255.255.255.255", false},
		{"::ffff:127.0.0.1", false},  // IPv4-mapped loopback
		{"64:ff9b::a00:1", false},    // NAT64 of 10.0.0.1
		{"2002:a9fe:a9fe::1", false}, // 6to4 of 169.254.169.254
		{"64:ff9b::5db8:d822", true}, // NAT64 of a public address
		{"2001:db8::1", false},       // documentation
		{"198.18.0.1", false},        // benchmarking
	} {
		t.Run(tc.addr, func(t *testing.T) {
			err := feed.Destinations{}.CheckAddr(netip.MustParseAddr(tc.addr))
			if (err == nil) != tc.ok {
				t.Fatalf("CheckAddr = %v, want ok=%v", err, tc.ok)
			}
			if err := (feed.Destinations{AllowPrivate: true}).CheckAddr(netip.MustParseAddr(tc.addr)); err != nil {
				t.Errorf("allowed private, still refused: %v", err)
			}
		})
	}
}

func TestCheckURL(t *testing.T) {
	dns := names{"crm.example.com": {"93.184.216.34"}, "mixed.example.com": {"93.184.216.34", "10.0.0.7"},
		"internal.example.com": {"192.168.0.10"}}
	for _, tc := range []struct {
		name string
		d    feed.Destinations
		url  string
		want string // "" = accepted; else part of the error
	}{
		{"public https", feed.Destinations{}, "https://crm.example.com/hooks/engage?x=1", ""},
		{"public address literal", feed.Destinations{}, "https://93.184.216.34:8443/h", ""},
		{"http refused", feed.Destinations{}, "http://crm.example.com/h", "must use https"},
		{"http allowed", feed.Destinations{AllowHTTP: true}, "http://crm.example.com/h", ""},
		{"loopback", feed.Destinations{}, "https://127.0.0.1/h", "loopback"},
		{"localhost name", feed.Destinations{}, "https://[::1]:9000/h", "loopback"},
		{"one private answer", feed.Destinations{}, "https://mixed.example.com/h", "private"},
		{"private name", feed.Destinations{}, "https://internal.example.com/h", "private"},
		{"private allowed", feed.Destinations{AllowPrivate: true}, "https://internal.example.com/h", ""},
		{"metadata", feed.Destinations{}, "https://169.254.169.254/latest", "link-local"},
		{"unresolvable", feed.Destinations{}, "https://nowhere.example.com/h", "does not resolve"},
		{"ftp", feed.Destinations{}, "ftp://crm.example.com/h", "absolute https"},
		{"relative", feed.Destinations{}, "/hooks", "absolute https"},
		{"no host", feed.Destinations{}, "https:///h", "no host"},
		{"credentials", feed.Destinations{}, "https://u:p@crm.example.com/h", "user name"},
		{"fragment", feed.Destinations{}, "https://crm.example.com/h#x", "fragment"},
		{"spaces", feed.Destinations{}, "https://crm.example.com/a b", "spaces"},
		{"bad port", feed.Destinations{}, "https://crm.example.com:99999/h", "port"},
		{"too long", feed.Destinations{}, "https://crm.example.com/" + strings.Repeat("a", feed.MaxURL), "over the limit"},
		{"empty", feed.Destinations{}, "", "absolute https"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := tc.d.CheckURL(context.Background(), dns, tc.url)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if u.String() != tc.url {
					t.Errorf("URL became %q", u)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			}
			if !errors.Is(err, followed.ErrBadInput) {
				t.Errorf("%v is not bad input", err)
			}
		})
	}
}

func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{"https://crm.example.com/h", "http://127.0.0.1:80/", "https://[::ffff:10.0.0.1]/",
		"https://u@x/", "https://crm.example.com:0/", "https://%zz/", "https://crm.example.com/#"} {
		f.Add(s)
	}
	dns := names{"crm.example.com": {"93.184.216.34"}}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := feed.Destinations{}.CheckURL(context.Background(), dns, raw)
		if err != nil {
			if !errors.Is(err, followed.ErrBadInput) {
				t.Fatalf("%q: %v is not bad input", raw, err)
			}
			return
		}
		if u.Scheme != "https" || u.Hostname() == "" || u.User != nil {
			t.Fatalf("accepted %q", raw)
		}
		if a, err := netip.ParseAddr(u.Hostname()); err == nil {
			if (feed.Destinations{}).CheckAddr(a) != nil {
				t.Fatalf("accepted %q, which names a refused address", raw)
			}
		} else if u.Hostname() != "crm.example.com" {
			t.Fatalf("accepted %q, whose host does not resolve", raw)
		}
		if _, err := url.Parse(u.String()); err != nil {
			t.Fatalf("accepted %q, which does not parse back: %v", raw, err)
		}
	})
}
