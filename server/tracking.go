package server

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/engage-email/engage/followed"
)

// gif is a 43-byte transparent 1x1 GIF89a.
var gif = []byte{
	0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
	0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
	0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
}

// recordTimeout bounds how long a recipient's mail client waits on storage.
const recordTimeout = 5 * time.Second

func (s *Server) trackingRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+followed.PathOpen+"{token}", s.pixel) // GET patterns also match HEAD
	mux.HandleFunc("GET "+followed.PathClick+"{token}", s.redirect)
	mux.HandleFunc("GET "+followed.PathAttachment+"{token}", s.redirect)
	mux.HandleFunc("GET "+followed.PathHoneypot+"{token}", s.redirect)
}

func isTrackingPath(p string) bool { return strings.HasPrefix(p, "/t/") }

// pixel always answers the GIF: a bad token or a failing store is Engage's problem, not the email's.
func (s *Server) pixel(w http.ResponseWriter, r *http.Request) {
	tok, err := s.deps.Keys.Parse(strings.TrimSuffix(r.PathValue("token"), ".gif"))
	if err == nil && tok.Kind == followed.TokenOpen {
		s.record(r, tok)
	}
	h := w.Header()
	h.Set("Content-Type", "image/gif")
	h.Set("Cache-Control", "no-store, no-cache, must-revalidate, private, max-age=0")
	h.Set("Pragma", "no-cache")
	h.Set("Expires", "0")
	h.Set("Content-Length", "43")
	if r.Method == http.MethodHead {
		return
	}
	w.Write(gif)
}

// redirect sends a valid link to its original target whatever happens to the event; a forged or
// altered token goes nowhere.
func (s *Server) redirect(w http.ResponseWriter, r *http.Request) {
	tok, err := s.deps.Keys.Parse(r.PathValue("token"))
	var want followed.TokenKind
	switch r.URL.Path[:len(followed.PathClick)] {
	case followed.PathClick:
		want = followed.TokenClick
	case followed.PathAttachment:
		want = followed.TokenAttachment
	case followed.PathHoneypot:
		want = followed.TokenHoneypot
	}
	if err != nil || tok.Kind != want || !redirectable(tok.URL) {
		linkNotValid(w)
		return
	}
	s.record(r, tok)
	w.Header().Set("Cache-Control", "no-store, private")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, tok.URL, http.StatusFound)
}

func redirectable(target string) bool {
	u, err := url.Parse(target)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func (s *Server) record(r *http.Request, tok followed.Token) {
	hit := followed.Hit{Token: tok, At: time.Now(), IP: s.clientIP(r), UserAgent: r.UserAgent(), Method: r.Method}
	if s.deps.IPStorage != nil {
		hit.IPStorage = s.deps.IPStorage()
	}
	ev := hit.Event(s.deps.Devices)
	if s.deps.Records != nil && !s.deps.Records(ev.Kind) {
		return // the signal was switched off after the message was sent: answered, not kept
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), recordTimeout)
	defer cancel()
	if s.deps.Labels != nil {
		// Label before recording, relabel after: a relabel reaches only events already stored.
		settle := s.deps.Labels.Label(hit, &ev)
		defer s.deps.Labels.Settle(ctx, settle)
	}
	if err := s.deps.Recorder.Record(ctx, ev); err != nil {
		s.deps.Log.ErrorContext(ctx, "tracking event not stored", "event", ev.ID, "message", ev.MessageID, "kind", ev.Kind, "err", err)
	}
}

// clientIP is the peer address, or the address a trusted proxy says it forwarded for: the rightmost
// X-Forwarded-For entry that is not itself a trusted proxy, since anything left of it is the client's word.
func (s *Server) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if !s.trusted(net.ParseIP(host)) {
		return host
	}
	// Every line counts (a proxy may add its own rather than append to the client's), in order: read
	// from the last entry of the last line back.
	lines := r.Header.Values("X-Forwarded-For")
	for l := len(lines) - 1; l >= 0; l-- {
		hops := lines[l]
		if strings.TrimSpace(hops) == "" {
			return host // an empty entry, as an address that does not parse, ends the trusted chain
		}
		for hops != "" {
			var hop string
			if i := strings.LastIndexByte(hops, ','); i >= 0 {
				hops, hop = hops[:i], hops[i+1:]
			} else {
				hops, hop = "", hops
			}
			ip := forwardedIP(strings.TrimSpace(hop))
			if ip == nil {
				return host
			}
			if !s.trusted(ip) {
				return ip.String()
			}
			host = ip.String()
		}
	}
	return host
}

// forwardedIP reads one X-Forwarded-For entry: an address, or an address with a port as some proxies
// write it ("203.0.113.7:5555", "[2001:db8::1]:443"); nil when it is neither.
func forwardedIP(entry string) net.IP {
	if ip := net.ParseIP(entry); ip != nil {
		return ip
	}
	if ap, err := netip.ParseAddrPort(entry); err == nil {
		return net.IP(ap.Addr().Unmap().AsSlice())
	}
	return nil
}

func (s *Server) trusted(ip net.IP) bool {
	if ip == nil {
		return false
	}
	for _, n := range s.proxies {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

func linkNotValid(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusBadRequest)
	w.Write([]byte(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Link not valid</title></head>` +
		`<body style="font-family:sans-serif;max-width:36em;margin:4em auto"><h1>This link is not valid</h1>` +
		`<p>The link you followed is damaged or incomplete. Please use the original link in the email.</p></body></html>`))
}
