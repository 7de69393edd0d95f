package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metricsEndpoint is /metrics for Prometheus on a listener of its own: the public port faces the
// internet (tracking pixels and links), a scraper does not belong there. A nil *metricsEndpoint
// measures and serves nothing.
type metricsEndpoint struct {
	reg *prometheus.Registry
	ln  net.Listener
	hs  *http.Server
}

// listenMetrics takes addr at once, so that a port in use stops start-up before anything else starts,
// and builds the registry with the Go runtime's and the process's collectors beside Engage's own.
func listenMetrics(addr string) (*metricsEndpoint, error) {
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: register runtime collectors: %w", err)
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	return &metricsEndpoint{reg: reg, ln: ln}, nil
}

// registerer is where the server registers its metrics; nil (so nothing is measured) without an endpoint.
func (m *metricsEndpoint) registerer() prometheus.Registerer {
	if m == nil {
		return nil // an untyped nil: a nil *Registry in the interface would not read as "no metrics"
	}
	return m.reg
}

// serve starts answering scrapes; they stop at close.
func (m *metricsEndpoint) serve(log *slog.Logger) {
	if m == nil {
		return
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		MaxRequestsInFlight: 4, // scrapes are rare; a flood of them must not take the tracking path's CPU
		Timeout:             10 * time.Second,
	}))
	m.hs = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Info("metrics listening", "addr", m.ln.Addr().String())
	go func() {
		if err := m.hs.Serve(m.ln); !errors.Is(err, http.ErrServerClosed) {
			log.Warn("metrics listener stopped", "err", err)
		}
	}()
}

// close stops serving and lets the address go.
func (m *metricsEndpoint) close() {
	if m == nil {
		return
	}
	if m.hs != nil {
		m.hs.Close()
	}
	m.ln.Close()
}

// checkMetricsAddr validates ENGAGE_METRICS_ADDR: any host:port (scrapers run elsewhere), but never a
// port the public listener or pprof may already hold.
func (c config) checkMetricsAddr() error {
	if c.MetricsAddr == "" {
		return nil
	}
	bad := func(why string) error {
		return fmt.Errorf("ENGAGE_METRICS_ADDR=%q: %s", c.MetricsAddr, why)
	}
	host, port, err := net.SplitHostPort(c.MetricsAddr)
	if err != nil {
		return bad("want host:port, such as 0.0.0.0:9090 or 127.0.0.1:9090")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return bad("want a port number from 1 to 65535, such as 0.0.0.0:9090")
	}
	if host != "" && net.ParseIP(host) == nil && !hostName(host) {
		return bad("want an IP address or a host name before the port, such as 0.0.0.0:9090")
	}
	for _, other := range []struct{ name, addr string }{{"ENGAGE_ADDR", c.Addr}, {"ENGAGE_PPROF_ADDR", c.PprofAddr}} {
		if mayOverlap(c.MetricsAddr, other.addr) {
			return bad(fmt.Sprintf("the same port as %s=%q; /metrics needs a listener of its own", other.name, other.addr))
		}
	}
	return nil
}

// mayOverlap reports whether two listen addresses could take the same port: the same port number,
// unless both hosts are distinct, specific IP addresses.
func mayOverlap(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil || pa != pb || pa == "0" {
		return false
	}
	ia, ib := net.ParseIP(ha), net.ParseIP(hb)
	if ia == nil || ib == nil || ia.IsUnspecified() || ib.IsUnspecified() {
		return true
	}
	return ia.Equal(ib)
}

// hostName reports whether s looks like a DNS host name: dot-separated labels of letters, digits and hyphens.
func hostName(s string) bool {
	if len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}
