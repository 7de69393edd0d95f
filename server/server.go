// Package server wires Engage's HTTP surface: GraphQL over HTTP and websocket, the tracking endpoints
// that must never fail an email, health and readiness, each behind request ids, logging and limits.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/engage-email/engage/auth"
	"github.com/engage-email/engage/feed"
	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/graph"
	"github.com/engage-email/engage/inbound"
)

// Authenticator proves who is calling, from an HTTP request or a websocket connection_init payload.
type Authenticator interface {
	Authenticate(ctx context.Context, r *http.Request) (auth.Identity, error)
	AuthenticateInit(ctx context.Context, payload map[string]any) (auth.Identity, error)
}

// Options are the server's settings.
type Options struct {
	BodyLimit       int64    // bytes; default 10 MiB
	AllowedOrigins  []string // websocket origins beyond Engage's own
	Introspection   bool
	ComplexityLimit int           // default 500
	KeepAlive       time.Duration // websocket ping interval; default 10s
	TrustedProxies  []string      // CIDRs whose X-Forwarded-For is believed
	// UploadLimit bounds a GraphQL multipart request (a file upload); default BodyLimit. Uploads past
	// 1 MiB stream to a temporary file, so memory stays bounded whatever it is.
	UploadLimit int64
	// AddIn fills the Outlook add-in manifest served at /addin/manifest.xml.
	AddIn AddIn
}

// Deps are the parts the server routes to.
type Deps struct {
	Log      *slog.Logger
	Auth     Authenticator
	Ready    func(ctx context.Context) error
	Resolver *graph.Resolver
	Keys     *followed.KeyRing
	Devices  *followed.DeviceParser
	Recorder *followed.Recorder
	// Labels labels every hit as a person's or a machine's (Apple's proxy, link scanners); nil labels none.
	Labels *followed.Labeller
	// IPStorage says how much of a client's address to keep with its events; nil keeps it whole.
	IPStorage func() followed.IPStorage
	// Records says whether the org's settings still track a kind of event; nil records every kind.
	Records func(followed.EventKind) bool
	// Files serves local mode's shared attachments under /files/; nil with a tenant (OneDrive serves them).
	Files http.Handler
	// Inbound queues Graph's notifications (POST /hooks/graph) and, in local mode, the outbox's simulated
	// replies and bounces; nil serves neither.
	Inbound *inbound.Processor
	// OptOuts carries out recipients' opt-out links under /t/u/; nil serves none.
	OptOuts *feed.OptOuts
	// Metrics takes the HTTP, tracking and websocket metrics, for /metrics on a listener of its own;
	// nil measures nothing.
	Metrics prometheus.Registerer
}

// Server is Engage's HTTP server.
type Server struct {
	opts    Options
	deps    Deps
	handler http.Handler
	proxies []net.IPNet
	metrics *metrics // nil when not measured
	// base is cancelled on shutdown so that hijacked websocket connections, which http.Server.Shutdown
	// does not track, close their subscriptions too.
	base   context.Context
	cancel context.CancelFunc
}

// New builds the server and its routes.
func New(opts Options, deps Deps) (*Server, error) {
	if opts.BodyLimit <= 0 {
		opts.BodyLimit = 10 << 20
	}
	if opts.UploadLimit <= 0 {
		opts.UploadLimit = opts.BodyLimit
	}
	if opts.ComplexityLimit <= 0 {
		opts.ComplexityLimit = 500
	}
	if opts.KeepAlive <= 0 {
		opts.KeepAlive = 10 * time.Second
	}
	proxies, err := parseCIDRs(opts.TrustedProxies)
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, deps: deps, proxies: proxies}
	s.base, s.cancel = context.WithCancel(context.Background())
	mux := http.NewServeMux()
	if deps.Metrics != nil {
		if s.metrics, err = newMetrics(deps.Metrics, deps.Recorder, mux); err != nil {
			return nil, err
		}
	}
	gql := uploadGuard(s.graphql())
	mux.Handle("/graphql", s.authenticate(gql))
	mux.HandleFunc("GET /{$}", s.playground)
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	s.trackingRoutes(mux)
	s.optOutRoutes(mux)
	s.outboxRoutes(mux)
	s.hookRoutes(mux)
	if err := s.webRoutes(mux); err != nil {
		return nil, err
	}
	s.fileRoutes(mux)
	s.handler = s.middleware(mux)
	return s, nil
}

// Handler returns the root handler, for tests and for an http.Server.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve serves on ln until ctx is done, then drains in-flight requests for up to grace and closes
// websocket subscriptions cleanly.
func (s *Server) Serve(ctx context.Context, ln net.Listener, grace time.Duration) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return s.base },
		ErrorLog:          slog.NewLogLogger(s.deps.Log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("server: %w", err)
	case <-ctx.Done():
	}
	s.deps.Log.Info("shutting down", "grace", grace.String())
	s.cancel()
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := hs.Shutdown(sctx)
	if err2 := <-errc; !errors.Is(err2, http.ErrServerClosed) {
		err = errors.Join(err, err2)
	}
	if err != nil {
		return fmt.Errorf("server: shutdown: %w", err)
	}
	return nil
}

func parseCIDRs(cidrs []string) ([]net.IPNet, error) {
	var out []net.IPNet
	for _, c := range cidrs {
		_, n, err := net.ParseCIDR(c)
		if err != nil {
			ip := net.ParseIP(c)
			if ip == nil {
				return nil, fmt.Errorf("server: trusted proxy %q is not an address or CIDR", c)
			}
			bits := 32
			if ip.To4() == nil {
				bits = 128
			}
			n = &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)}
		}
		out = append(out, *n)
	}
	return out, nil
}
