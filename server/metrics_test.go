package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/engage-email/engage/auth"
	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/graph"
	"github.com/engage-email/engage/server"
)

// scraper reads a registry the way Prometheus does: promhttp over a real listener, then the text format.
type scraper struct{ url string }

func newScraper(t *testing.T, reg *prometheus.Registry) scraper {
	t.Helper()
	ts := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(ts.Close)
	return scraper{url: ts.URL + "/metrics"}
}

func (s scraper) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	res, err := http.Get(s.url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("scrape: status %d", res.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	return fams
}

// value is the counter, gauge or histogram count of the series of name with exactly labels; -1 when absent.
func value(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
	for _, m := range f.GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		match := true
		for _, l := range m.GetLabel() {
			if labels[l.GetName()] != l.GetValue() {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

func TestMetricsOverHTTP(t *testing.T) {
	e := start(t)
	s := newScraper(t, e.Metrics)
	id, pixels := followFor(t, e, "rep@contoso.com", "Metrics", "ann@fabrikam.com")
	var out followedOut
	if r := e.gql(t, "rep@contoso.com", followMutation, map[string]any{"in": map[string]any{"subject": "Links",
		"html": `<a href="https://contoso.example/pricing">Pricing</a>`, "recipients": []map[string]any{{"email": "bob@fabrikam.com"}},
	}}, &out); r.code() != "" {
		t.Fatalf("follow: %+v", r.Errors)
	}
	click := hrefRe.FindStringSubmatch(out.FollowMessage.Renders[0].HTML)[1]
	tokens := []string{tokenOf(t, pixels[0]), tokenOf(t, click)}

	for _, h := range []struct{ method, url string }{
		{"GET", pixels[0]}, {"HEAD", pixels[0]}, {"GET", click},
		{"GET", e.URL + "/t/o/not-a-token.gif"}, // still the GIF, never recorded
		{"GET", e.URL + "/t/zz/" + tokens[0]},   // no such route: 404
		{"GET", e.URL + "/healthz"},
	} {
		get(t, h.method, h.url, outlookUA).Body.Close()
	}
	var msg struct{ Message struct{ ID string } }
	if r := e.gql(t, "rep@contoso.com", `query($id: ID!) { message(id: $id) { id } }`, map[string]any{"id": id}, &msg); r.code() != "" {
		t.Fatalf("message: %+v", r.Errors)
	}
	big, _ := json.Marshal(map[string]string{"query": strings.Repeat(" ", 300<<10) + "{ me { email } }"})
	res, err := http.Post(e.URL+"/graphql", "application/json", strings.NewReader(string(big)))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversize body: %d, want 413", res.StatusCode)
	}

	const pixelRoute, clickRoute = "GET /t/o/{token}", "GET /t/c/{token}"
	tests := []struct {
		name, metric string
		labels       map[string]string
		want         float64 // exact
	}{
		{"pixel GET and HEAD, valid or not", "engage_http_requests_total", map[string]string{"route": pixelRoute, "status_class": "2xx"}, 3},
		{"click redirects", "engage_http_requests_total", map[string]string{"route": clickRoute, "status_class": "3xx"}, 1},
		{"no route", "engage_http_requests_total", map[string]string{"route": "unmatched", "status_class": "4xx"}, 1},
		{"health", "engage_http_requests_total", map[string]string{"route": "GET /healthz", "status_class": "2xx"}, 1},
		{"graphql over HTTP", "engage_http_requests_total", map[string]string{"route": "/graphql", "status_class": "2xx"}, 3},
		{"body over the limit, refused before routing", "engage_http_requests_total", map[string]string{"route": "/graphql", "status_class": "4xx"}, 1},
		{"pixel latency", "engage_http_request_duration_seconds", map[string]string{"route": pixelRoute}, 3},
		{"graphql latency", "engage_http_request_duration_seconds", map[string]string{"route": "/graphql"}, 4},
		{"valid hits recorded", "engage_tracking_events_recorded_total", nil, 3},
		{"none spooled", "engage_tracking_events_spooled_total", nil, 0},
		{"none replayed", "engage_tracking_events_replayed_total", nil, 0},
		{"none lost", "engage_tracking_events_failed_total", nil, 0},
		{"nothing pending", "engage_tracking_spool_pending_events", nil, 0},
		{"not degraded", "engage_tracking_degraded", nil, 0},
		{"nothing queued once answered", "engage_tracking_queued_events", nil, 0},
		{"no websocket open", "engage_websocket_connections", nil, 0},
	}
	fams := s.scrape(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := value(fams, tt.metric, tt.labels); got != tt.want {
				t.Fatalf("%s%v = %v, want %v", tt.metric, tt.labels, got, tt.want)
			}
		})
	}
	t.Run("commits", func(t *testing.T) {
		if got := value(fams, "engage_tracking_commits_total", nil); got < 1 || got > 3 {
			t.Fatalf("engage_tracking_commits_total = %v, want 1 to 3 for 3 events", got)
		}
	})
	t.Run("every engage metric says what it is for", func(t *testing.T) {
		for name, f := range fams {
			if strings.HasPrefix(name, "engage_") && len(f.GetHelp()) < 20 {
				t.Errorf("%s: help %q", name, f.GetHelp())
			}
		}
	})
	t.Run("no token and no raw path in any label", func(t *testing.T) {
		routes := []string{pixelRoute, clickRoute, "unmatched", "GET /healthz", "/graphql"}
		for name, f := range fams {
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					for _, tok := range tokens {
						if strings.Contains(l.GetValue(), tok) {
							t.Errorf("%s: label %s=%q holds a token", name, l.GetName(), l.GetValue())
						}
					}
					if l.GetName() == "route" && !slices.Contains(routes, l.GetValue()) {
						t.Errorf("%s: route %q is not a mux pattern", name, l.GetValue())
					}
				}
			}
		}
	})
}

// tokenOf is the token in a tracking URL's last path segment.
func tokenOf(t *testing.T, u string) string {
	t.Helper()
	i := strings.LastIndex(u, "/")
	tok := strings.TrimSuffix(u[i+1:], ".gif")
	if len(tok) < 16 {
		t.Fatalf("no token in %q", u)
	}
	return tok
}

func TestMetricsCountOpenWebsockets(t *testing.T) {
	e := start(t)
	s := newScraper(t, e.Metrics)
	open := func() float64 { return value(s.scrape(t), "engage_websocket_connections", nil) }
	tests := []struct {
		name, subprotocol string
	}{
		{"graphql-transport-ws (Engage's transport)", "graphql-transport-ws"},
		{"graphql-ws (gqlgen's transport)", "graphql-ws"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := dialWS(t, e, tt.subprotocol, "")
			if err != nil {
				t.Fatal(err)
			}
			if !eventually(func() bool { return open() == 1 }) {
				t.Fatalf("with one websocket open: engage_websocket_connections = %v, want 1", open())
			}
			c.Close()
			if !eventually(func() bool { return open() == 0 }) {
				t.Fatalf("after it closed: engage_websocket_connections = %v, want 0", open())
			}
		})
	}
	upgrades := value(s.scrape(t), "engage_http_requests_total", map[string]string{"route": "/graphql", "status_class": "1xx"})
	if upgrades != 2 {
		t.Fatalf("websocket upgrades counted: %v, want 2", upgrades)
	}
	if got := value(s.scrape(t), "engage_http_request_duration_seconds", map[string]string{"route": "/graphql"}); got != -1 {
		t.Fatalf("upgrades timed: %v samples, want none (a websocket's handler lasts as long as it)", got)
	}
}

func TestMetricsRegistration(t *testing.T) {
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	newServer := func(reg prometheus.Registerer) error {
		_, err := server.New(server.Options{}, server.Deps{Log: log, Auth: auth.NewLocal(nil), Resolver: &graph.Resolver{}, Metrics: reg})
		return err
	}
	shared := prometheus.NewRegistry()
	tests := []struct {
		name    string
		reg     prometheus.Registerer
		wantErr bool
	}{
		{"no registry measures nothing", nil, false},
		{"a fresh registry", shared, false},
		{"the same registry twice is refused with an error, not a panic", shared, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := newServer(tt.reg)
			if (err != nil) != tt.wantErr || (err != nil && !strings.Contains(err.Error(), "register metrics")) {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
		})
	}
	fams, err := shared.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range fams {
		names = append(names, f.GetName())
	}
	// Without a recorder there are no tracking metrics; series of vectors appear once observed.
	if want := fmt.Sprint([]string{"engage_websocket_connections"}); fmt.Sprint(names) != want {
		t.Fatalf("gathered %v, want %v", names, want)
	}
}

// BenchmarkMiddlewareMetrics measures what metrics add to a request that touches no store: a pixel
// with a forged token (answered with the GIF) and the health check, with and without a registry.
func BenchmarkMiddlewareMetrics(b *testing.B) {
	keys, err := followed.LoadOrCreateKeyRing(b.TempDir(), "")
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	for _, reg := range []struct {
		name string
		reg  prometheus.Registerer
	}{{"off", nil}, {"on", prometheus.NewRegistry()}} {
		srv, err := server.New(server.Options{}, server.Deps{Log: log, Auth: auth.NewLocal(nil), Resolver: &graph.Resolver{},
			Keys: keys, Ready: func(context.Context) error { return nil }, Metrics: reg.reg})
		if err != nil {
			b.Fatal(err)
		}
		h := srv.Handler()
		for _, path := range []string{"/t/o/forged-token.gif", "/healthz"} {
			b.Run(reg.name+path, func(b *testing.B) {
				req := httptest.NewRequest("GET", path, nil)
				b.ReportAllocs()
				for b.Loop() {
					h.ServeHTTP(httptest.NewRecorder(), req)
				}
			})
		}
	}
}
