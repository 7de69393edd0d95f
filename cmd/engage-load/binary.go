package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/engage-email/engage/followed"
)

// printRecorder reports what the recorder did in the run: batch size, and whether anything went to
// the spool or was lost.
func printRecorder(out io.Writer, st followed.RecorderStats) {
	fmt.Fprintf(out, "recorder: %d committed in %d commits (%.1f per commit), %d spooled, %d replayed, %d failed, %d pending in the spool\n",
		st.Recorded, st.Commits, float64(st.Recorded)/float64(max(1, st.Commits)), st.Spooled, st.Replayed, st.Failed, st.SpoolPending)
}

// freeLoopbackAddr is a loopback address with a port free a moment ago, for a child's metrics
// listener: cmd/engage wants a port it can be scraped on, not 0.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("free port: %w", err)
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// get fetches url from an Engage binary's side listener (pprof, metrics); the caller closes the body.
func get(ctx context.Context, url string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		res.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", url, res.Status)
	}
	return res.Body, nil
}

// profileChild asks an Engage binary's pprof endpoint for a CPU profile of the next d (rounded up to
// whole seconds) and writes it to path; the channel says how that went once it is done.
func profileChild(ctx context.Context, pprofAddr string, d time.Duration, path string) <-chan error {
	done := make(chan error, 1)
	seconds := int((d + time.Second - 1) / time.Second)
	go func() {
		body, err := get(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", pprofAddr, seconds))
		if err != nil {
			done <- err
			return
		}
		defer body.Close()
		f, err := os.Create(path)
		if err != nil {
			done <- err
			return
		}
		_, err = io.Copy(f, body)
		done <- errors.Join(err, f.Close())
	}()
	return done
}

// scrapeRecorder reads the recorder's counts from an Engage binary's Prometheus endpoint.
func scrapeRecorder(ctx context.Context, metricsAddr string) (followed.RecorderStats, error) {
	var st followed.RecorderStats
	body, err := get(ctx, "http://"+metricsAddr+"/metrics")
	if err != nil {
		return st, fmt.Errorf("recorder metrics: %w", err)
	}
	defer body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(body)
	if err != nil {
		return st, fmt.Errorf("recorder metrics: %w", err)
	}
	value := func(name string) float64 {
		f, ok := families[name]
		if !ok || len(f.GetMetric()) != 1 {
			return 0
		}
		m := f.GetMetric()[0]
		if c := m.GetCounter(); c != nil {
			return c.GetValue()
		}
		return m.GetGauge().GetValue()
	}
	if _, ok := families["engage_tracking_commits_total"]; !ok {
		return st, fmt.Errorf("recorder metrics: %s serves no engage_tracking_commits_total", metricsAddr)
	}
	st.Recorded = uint64(value("engage_tracking_events_recorded_total"))
	st.Spooled = uint64(value("engage_tracking_events_spooled_total"))
	st.Replayed = uint64(value("engage_tracking_events_replayed_total"))
	st.Failed = uint64(value("engage_tracking_events_failed_total"))
	st.Commits = uint64(value("engage_tracking_commits_total"))
	st.SpoolPending = int(value("engage_tracking_spool_pending_events"))
	return st, nil
}
