// Command engage-alertload measures alert delivery: it runs Engage as child processes on one data
// directory, holds many idle alert subscriptions open, and times pixel hit -> FIRST_OPEN frame; it
// reports latency percentiles, each server's resident memory read from /proc and its goroutines.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "engage-alertload:", err)
		os.Exit(1)
	}
}

// config is what one load run does.
type config struct {
	bin       string
	instances int
	hits      int
	idle      int
	dialers   int
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("engage-alertload", flag.ContinueOnError)
	var c config
	fs.StringVar(&c.bin, "bin", "", "the engage binary to run (go build -o engage ./cmd/engage)")
	fs.IntVar(&c.instances, "instances", 1, "Engage processes on one data dir (1 or 2); with 2, hits go to the second and the subscriber listens on the first")
	fs.IntVar(&c.hits, "hits", 200, "pixel hits timed, one at a time")
	fs.IntVar(&c.idle, "idle", 0, "idle alert subscriptions held open on the first instance during the run")
	fs.IntVar(&c.dialers, "dialers", 32, "concurrent dials while opening idle subscriptions")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	switch {
	case c.bin == "":
		return c, errors.New("-bin is required")
	case c.instances < 1 || c.instances > 2:
		return c, fmt.Errorf("-instances %d: want 1 or 2", c.instances)
	case c.hits < 1 || c.idle < 0 || c.dialers < 1:
		return c, errors.New("-hits and -dialers must be positive, -idle not negative")
	}
	return c, nil
}

func run(ctx context.Context, args []string, out io.Writer) error {
	cfg, err := parseFlags(args)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "engage-alertload-")
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	defer os.RemoveAll(dir)
	var procs []*instance
	defer func() {
		for _, p := range procs {
			p.Stop()
		}
	}()
	for range cfg.instances {
		p, err := startInstance(ctx, cfg.bin, dir)
		if err != nil {
			return err
		}
		procs = append(procs, p)
	}
	fmt.Fprintf(out, "engage-alertload: %d instance(s), %d idle subscriptions, %d timed hits; %s, %d CPUs\n",
		cfg.instances, cfg.idle, cfg.hits, runtime.Version(), runtime.NumCPU())
	base, err := procs[0].rss()
	if err != nil {
		return err
	}
	baseG, err := procs[0].goroutines(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "RSS of instance 1 at start: %.1f MB, %d goroutines\n", mb(base), baseG)

	idleCtx, stopIdle := context.WithCancel(ctx)
	defer stopIdle()
	if cfg.idle > 0 {
		start := time.Now()
		n, err := openIdle(idleCtx, procs[0].Addr, cfg.idle, cfg.dialers)
		if err != nil {
			return fmt.Errorf("idle subscriptions (%d open): %w", n, err)
		}
		time.Sleep(2 * time.Second) // let the server settle (GC, keep-alive timers)
		held, err := procs[0].rss()
		if err != nil {
			return err
		}
		heldG, err := procs[0].goroutines(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "RSS of instance 1 with %d idle subscriptions: %.1f MB (%.1f KB each over the start) opened in %s\n",
			n, mb(held), float64(held-base)/1024/float64(n), time.Since(start).Round(time.Millisecond))
		fmt.Fprintf(out, "goroutines of instance 1 with %d idle subscriptions: %d (%.2f per subscription over the start)\n",
			n, heldG, float64(heldG-baseG)/float64(n))
	}

	lat, err := timeHits(ctx, procs[0].Addr, procs[len(procs)-1].Addr, cfg.hits)
	if err != nil {
		return err
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	fmt.Fprintf(out, "pixel -> FIRST_OPEN frame (%s): n=%d p50=%s p90=%s p99=%s max=%s\n", route(cfg.instances), len(lat),
		percentile(lat, 50), percentile(lat, 90), percentile(lat, 99), lat[len(lat)-1])
	for i, p := range procs {
		r, err := p.rss()
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "RSS of instance %d at the end: %.1f MB\n", i+1, mb(r))
	}
	return nil
}

func route(instances int) string {
	if instances == 2 {
		return "hit on instance 2, subscriber on instance 1"
	}
	return "one instance"
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

// percentile is the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := (p*len(sorted) + 99) / 100
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}
