package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// freePort is a loopback port nothing listens on at the moment.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestMetricsEndpoint(t *testing.T) {
	metricsAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	env := map[string]string{"ENGAGE_ADDR": "127.0.0.1:0", "ENGAGE_DATA_DIR": t.TempDir(), "ENGAGE_METRICS_ADDR": metricsAddr}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, func(k string) string { return env[k] }, io.Discard, ready) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("engage did not start: %v", err)
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	res, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	res, err = http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound || strings.Contains(string(body), "engage_") {
		t.Fatalf("public port's /metrics: %d %.200s, want 404 and no metrics", res.StatusCode, body)
	}

	res, err = http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	tests := []struct {
		family string
		why    string
	}{
		{"go_goroutines", "the Go collector"},
		{"go_memstats_heap_inuse_bytes", "the Go collector"},
		{"process_resident_memory_bytes", "the process collector"},
		{"go_build_info", "the build info collector"},
		{"engage_http_requests_total", "the server's middleware"},
		{"engage_http_request_duration_seconds", "the server's middleware"},
		{"engage_websocket_connections", "the websocket keep-alive"},
		{"engage_tracking_events_recorded_total", "the recorder collector"},
		{"engage_tracking_degraded", "the recorder collector"},
	}
	for _, tt := range tests {
		t.Run(tt.family, func(t *testing.T) {
			if fams[tt.family] == nil {
				t.Fatalf("%s (from %s) missing", tt.family, tt.why)
			}
		})
	}
	t.Run("the health check counted under its route", func(t *testing.T) {
		for _, m := range fams["engage_http_requests_total"].GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["route"] == "GET /healthz" && labels["status_class"] == "2xx" && m.GetCounter().GetValue() == 1 {
				return
			}
		}
		t.Fatalf("no engage_http_requests_total{route=\"GET /healthz\",status_class=\"2xx\"} 1 in %v", fams["engage_http_requests_total"])
	})
}

func TestMetricsEndpointRefusesABusyAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	env := map[string]string{"ENGAGE_ADDR": "127.0.0.1:0", "ENGAGE_DATA_DIR": t.TempDir(), "ENGAGE_METRICS_ADDR": ln.Addr().String()}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = run(ctx, func(k string) string { return env[k] }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "metrics listener") {
		t.Fatalf("run with the metrics port taken: %v, want an error naming the metrics listener", err)
	}
}

func FuzzMetricsAddr(f *testing.F) {
	for _, s := range []string{"0.0.0.0:9090", ":9090", "[::1]:9090", "metrics.internal:9090", "127.0.0.1:8080", "9090",
		"http://x:1", "a b:1", "[::1]:0", "-x-:80", "x..y:80", ":65536"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := config{Addr: "127.0.0.1:8080", PprofAddr: "127.0.0.1:6060", MetricsAddr: s}
		if err := c.checkMetricsAddr(); err != nil {
			if s == "" || !strings.Contains(err.Error(), "ENGAGE_METRICS_ADDR") {
				t.Fatalf("%q: %v", s, err)
			}
			return
		}
		if s == "" {
			return
		}
		host, port, err := net.SplitHostPort(s)
		if err != nil {
			t.Fatalf("%q accepted but not host:port: %v", s, err)
		}
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			t.Fatalf("%q accepted with port %q", s, port)
		}
		if ip := net.ParseIP(host); (n == 8080 || n == 6060) && (ip == nil || ip.IsUnspecified() || ip.Equal(net.IPv4(127, 0, 0, 1))) {
			t.Fatalf("%q accepted on the public or pprof port", s)
		}
		if strings.ContainsAny(host, " /\t\n:") && net.ParseIP(host) == nil {
			t.Fatalf("%q accepted with host %q", s, host)
		}
	})
}
