package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"text/tabwriter"
	"time"
)

// result is one target's run.
type result struct {
	name      string
	ok, errs  int // answers with the expected status; anything else (or no answer)
	elapsed   time.Duration
	latencies []time.Duration // sorted once all slices are in
	ratio     float64         // req/s over the bare handler's; 0 for the bare rows
	cpuRatio  float64         // the bare handler's CPU time per hit over Engage's, when both were read; else 0
}

// add folds another slice's run into r; call sort once all are in.
func (r *result) add(o result) {
	r.ok += o.ok
	r.errs += o.errs
	r.elapsed += o.elapsed
	r.latencies = append(r.latencies, o.latencies...)
}

func (r *result) sort() { slices.Sort(r.latencies) }

func (r result) rps() float64 { return float64(r.ok) / r.elapsed.Seconds() }

func (r result) quantile(q float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	return r.latencies[min(len(r.latencies)-1, int(q*float64(len(r.latencies))))]
}

// drive sends GETs to urls (round robin) from concurrency keep-alive connections for d and measures each
// answer; a pixel must answer 200 and a click 302, or the request counts as an error.
func drive(ctx context.Context, name string, urls []string, kind string, concurrency int, d time.Duration) (result, error) {
	if len(urls) == 0 {
		return result{}, fmt.Errorf("%s: no URLs to drive", name)
	}
	want := http.StatusOK
	if kind == "click" {
		want = http.StatusFound
	}
	tr := &http.Transport{MaxIdleConns: concurrency, MaxIdleConnsPerHost: concurrency, MaxConnsPerHost: concurrency,
		DisableCompression: true, IdleConnTimeout: 30 * time.Second}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	type worker struct {
		ok, errs int
		lat      []time.Duration
	}
	workers := make([]worker, concurrency)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go labelled("load: "+name, func() {
			defer wg.Done()
			me := &workers[w]
			me.lat = make([]time.Duration, 0, 4096)
			for i := w; ctx.Err() == nil; i += concurrency {
				t0 := time.Now()
				if t0.After(deadline) {
					return
				}
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, urls[i%len(urls)], nil)
				if err != nil {
					me.errs++
					continue
				}
				req.Header.Set("User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Microsoft Outlook 16.0.17928")
				res, err := client.Do(req)
				if err != nil {
					me.errs++
					continue
				}
				_, err = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if err != nil || res.StatusCode != want {
					me.errs++
					continue
				}
				me.ok++
				me.lat = append(me.lat, time.Since(t0))
			}
		})
	}
	wg.Wait()
	r := result{name: name, elapsed: time.Since(start)}
	for _, w := range workers {
		r.ok += w.ok
		r.errs += w.errs
		r.latencies = append(r.latencies, w.lat...)
	}
	return r, ctx.Err()
}

func printTable(out io.Writer, results []result) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\trequests\terrors\treq/s\tp50\tp99\tmax\tratio to bare\t")
	for _, r := range results {
		ratio := "-"
		if r.ratio > 0 {
			ratio = fmt.Sprintf("%.2f", r.ratio)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%s\t%s\t%s\t%s\t\n", r.name, r.ok, r.errs, r.rps(),
			ms(r.quantile(0.50)), ms(r.quantile(0.99)), ms(r.quantile(1)), ratio)
	}
	tw.Flush()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

func gomaxprocs() int { return runtime.GOMAXPROCS(0) }
