package server

import (
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/engage-email/engage/followed"
)

// routeUnmatched labels requests that matched none of the mux's patterns. A raw path is never a label
// value: tracking tokens travel in paths, and every path would make a series of its own.
const routeUnmatched = "unmatched"

// metrics are the server's Prometheus instruments; a nil *metrics measures nothing and costs a nil check.
type metrics struct {
	mux        *http.ServeMux
	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	websockets prometheus.Gauge
}

// newMetrics registers the server's instruments on reg, and the recorder's counts when rec is not nil.
// A server without a registry has nil metrics, whose methods measure nothing.
func newMetrics(reg prometheus.Registerer, rec *followed.Recorder, mux *http.ServeMux) (*metrics, error) {
	m := &metrics{
		mux: mux,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "engage_http_requests_total",
			Help: "HTTP requests answered, by route pattern and status class (2xx, 4xx, 5xx...): error rates per endpoint.",
		}, []string{"route", "status_class"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "engage_http_request_duration_seconds",
			Help: "Time to answer an HTTP request, by route pattern: a tracking hit waits for its group commit, so a slow store shows here first. Websocket upgrades are not timed.",
			// From the tracking path's sub-millisecond answers up past the spool's 2 s commit timeout.
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		websockets: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "engage_websocket_connections",
			Help: "Websocket connections open (GraphQL subscriptions, mostly alert subscribers): the bulk of Engage's memory when idle.",
		}),
	}
	cs := []prometheus.Collector{m.requests, m.latency, m.websockets}
	if rec != nil {
		cs = append(cs, newRecorderCollector(rec))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("server: register metrics: %w", err)
		}
	}
	return m, nil
}

// observe counts a finished request under its route pattern, which the mux set on r while routing it.
func (m *metrics) observe(r *http.Request, status int, start time.Time) {
	if m == nil {
		return
	}
	route := r.Pattern
	if route == "" && status == http.StatusRequestEntityTooLarge && m.mux != nil {
		_, route = m.mux.Handler(r) // refused by the body limit before it was routed
	}
	if route == "" {
		route = routeUnmatched
	}
	m.requests.WithLabelValues(route, statusClass(status)).Inc()
	if status != http.StatusSwitchingProtocols { // a websocket's handler may last as long as the connection
		m.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
	}
}

// websocketGauge is what the websocket keep-alive counts open connections on; nil when not measured.
func (m *metrics) websocketGauge() prometheus.Gauge {
	if m == nil {
		return nil
	}
	return m.websockets
}

// statusClass returns constant strings, so that labelling a request allocates nothing.
func statusClass(status int) string {
	switch status / 100 {
	case 1:
		return "1xx"
	case 2:
		return "2xx"
	case 3:
		return "3xx"
	case 4:
		return "4xx"
	case 5:
		return "5xx"
	}
	return "other"
}

// recorderCollector reads the tracking recorder's counts at scrape time, so the hot path pays nothing
// for them and every metric of one scrape comes from the same Stats call.
type recorderCollector struct {
	rec                                          *followed.Recorder
	recorded, spooled, replayed, failed, commits *prometheus.Desc
	spoolPending, spoolBytes, degraded, queued   *prometheus.Desc
}

func newRecorderCollector(rec *followed.Recorder) *recorderCollector {
	desc := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	return &recorderCollector{
		rec: rec,
		recorded: desc("engage_tracking_events_recorded_total",
			"Tracking events (opens, clicks, attachment opens) committed to the store on their first try."),
		spooled: desc("engage_tracking_events_spooled_total",
			"Tracking events written to the spool instead, because the store failed, lagged past ENGAGE_SPOOL_AFTER or the queue was full."),
		replayed: desc("engage_tracking_events_replayed_total",
			"Spooled tracking events later committed to the store: catches up with spooled once the store is back."),
		failed: desc("engage_tracking_events_failed_total",
			"Tracking events neither stored nor spooled: hits lost, each also logged; should stay at zero."),
		commits: desc("engage_tracking_commits_total",
			"Group commits of live tracking batches; recorded divided by commits is the mean batch size."),
		spoolPending: desc("engage_tracking_spool_pending_events",
			"Spooled tracking events not yet replayed into the store."),
		spoolBytes: desc("engage_tracking_spool_bytes",
			"Size of the tracking spool on disk, in bytes."),
		queued: desc("engage_tracking_queued_events",
			"Tracking hits waiting for the next group commit; near the queue's size, hits go to the spool."),
		degraded: desc("engage_tracking_degraded",
			"1 while the store is failing or slow and tracking hits go to the spool, else 0."),
	}
}

// Describe sends the recorder metrics' descriptions.
func (c *recorderCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.recorded, c.spooled, c.replayed, c.failed, c.commits,
		c.spoolPending, c.spoolBytes, c.degraded, c.queued} {
		ch <- d
	}
}

// Collect reads the recorder's Stats once and sends them as metrics.
func (c *recorderCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.rec.Stats()
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	counter(c.recorded, st.Recorded)
	counter(c.spooled, st.Spooled)
	counter(c.replayed, st.Replayed)
	counter(c.failed, st.Failed)
	counter(c.commits, st.Commits)
	gauge(c.spoolPending, float64(st.SpoolPending))
	gauge(c.spoolBytes, float64(st.SpoolBytes))
	gauge(c.queued, float64(st.Queued))
	degraded := 0.0
	if st.Degraded {
		degraded = 1
	}
	gauge(c.degraded, degraded)
}
