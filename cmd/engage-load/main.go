// Command engage-load drives tracking traffic (pixels and redirects) at Engage over loopback and at a
// bare GIF handler in the same run, prints req/s and latency as a ratio of the bare figure, then checks
// that every acknowledged hit was stored.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/engage-email/engage/cmd/internal/child"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if os.Getenv(serveBareEnv) == "1" {
		err = serveBare(ctx, os.Stdin, os.Stdout)
	} else {
		err = run(ctx, os.Args[1:], os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "engage-load:", err)
		os.Exit(1)
	}
}

// options are the command line.
type options struct {
	concurrency int
	duration    time.Duration
	kind        string
	addr        string
	bin         string
	user        string
	messages    int
	body        int
	settle      time.Duration
	slice       time.Duration
	runs        int
	cpuprofile  string
	memprofile  string
}

func parseFlags(args []string, out io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("engage-load", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.IntVar(&o.concurrency, "concurrency", 64, "connections (and goroutines) per target")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long each target is driven")
	fs.StringVar(&o.kind, "kind", "both", "pixel, click or both")
	fs.StringVar(&o.addr, "addr", "", "host:port of a running Engage (loopback); empty starts one on a temporary data dir, in this process or with -bin")
	fs.StringVar(&o.bin, "bin", "", "an Engage binary (go build -o engage ./cmd/engage) to start in local mode for each run, on a temporary data dir: Engage as deployed, with everything it runs beside the tracking path")
	fs.StringVar(&o.user, "user", "load@contoso.com", "local-mode user that follows the messages")
	fs.IntVar(&o.messages, "messages", 100, "followed messages the traffic is spread over")
	fs.IntVar(&o.body, "body", 16<<10, "bytes of HTML in each followed message (Outlook's HTML makes even a short sales email tens of KiB)")
	fs.DurationVar(&o.settle, "settle", 30*time.Second, "how long to wait for spooled hits to reach the store before checking")
	fs.DurationVar(&o.slice, "slice", time.Second, "the bare handler and Engage take turns in slices this long")
	fs.IntVar(&o.runs, "runs", 1, "how many times to run the whole measurement, each on a fresh Engage; more than one adds a summary, since one run on a shared machine says little")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of this process for the whole run to this file: the load, and the bare handler and Engage when they run in this process; with -bin, the binary's own profile of each run goes beside it (file.engage-1, ...)")
	fs.StringVar(&o.memprofile, "memprofile", "", "write this process's allocation profile at the end of the run to this file (go tool pprof -sample_index=alloc_space): what the load, the bare handler and an in-process Engage allocated, the cost a CPU profile shows only as malloc and GC")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case o.concurrency < 1 || o.concurrency > 4096:
		return o, fmt.Errorf("-concurrency %d: want 1 to 4096", o.concurrency)
	case o.duration <= 0 || o.duration > 10*time.Minute:
		return o, fmt.Errorf("-duration %s: want more than 0 and at most 10m", o.duration)
	case o.kind != "pixel" && o.kind != "click" && o.kind != "both":
		return o, fmt.Errorf("-kind %q: want pixel, click or both", o.kind)
	case o.messages < 1 || o.messages > 10000:
		return o, fmt.Errorf("-messages %d: want 1 to 10000", o.messages)
	case o.body < 0 || o.body > 1<<20:
		return o, fmt.Errorf("-body %d: want 0 to 1048576 bytes", o.body)
	case o.slice < 100*time.Millisecond:
		return o, fmt.Errorf("-slice %s: want at least 100ms", o.slice)
	case o.runs < 1 || o.runs > 100:
		return o, fmt.Errorf("-runs %d: want 1 to 100", o.runs)
	case o.bin != "" && o.addr != "":
		return o, errors.New("-bin and -addr: give one, the binary to start or the address of one running")
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	if o.bin != "" {
		if st, err := os.Stat(o.bin); err != nil || st.IsDir() {
			return o, fmt.Errorf("-bin %q: not a file (build one with go build -o engage ./cmd/engage)", o.bin)
		}
	}
	if o.addr != "" {
		if err := loopbackAddr(o.addr); err != nil {
			return o, err
		}
	}
	return o, nil
}

func run(ctx context.Context, args []string, out io.Writer) error {
	o, err := parseFlags(args, out)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	var allocs *os.File // created now, so that a path that cannot be written fails before the runs
	if o.memprofile != "" {
		allocs, err = os.Create(o.memprofile)
		if err != nil {
			return fmt.Errorf("allocation profile: %w", err)
		}
		defer allocs.Close()
	}
	var all [][]result
	for i := range o.runs {
		if o.runs > 1 {
			fmt.Fprintf(out, "run %d of %d\n", i+1, o.runs)
		}
		results, err := once(ctx, o, i+1, out)
		if err != nil {
			return err
		}
		all = append(all, results)
	}
	if o.runs > 1 {
		printSummary(out, all)
	}
	if allocs != nil {
		// Written at the end, so it holds every run's allocations.
		if err := pprof.Lookup("allocs").WriteTo(allocs, 0); err != nil {
			return fmt.Errorf("allocation profile: %w", err)
		}
		if err := allocs.Close(); err != nil {
			return fmt.Errorf("allocation profile: %w", err)
		}
	}
	return nil
}

// once is one measurement: each kind against the bare handler, then the stored-versus-acknowledged
// check. It starts its own Engage unless -addr names one: in this process, or -bin in one of its own.
// The bare handler runs where Engage does, so that both pay alike for being, or not being, a process
// of their own.
func once(ctx context.Context, o options, run int, out io.Writer) ([]result, error) {
	addr := o.addr
	var eng *engage
	var proc *child.Process
	if addr == "" {
		dir, err := os.MkdirTemp("", "engage-load-*")
		if err != nil {
			return nil, fmt.Errorf("temp data dir: %w", err)
		}
		defer os.RemoveAll(dir)
		if o.bin != "" {
			metrics, err := freeLoopbackAddr()
			if err != nil {
				return nil, err
			}
			if proc, err = child.Start(ctx, o.bin, dir, "ENGAGE_METRICS_ADDR="+metrics); err != nil {
				return nil, err
			}
			defer proc.Stop()
			addr = proc.Addr
		} else {
			if eng, err = startEngage(ctx, dir); err != nil {
				return nil, err
			}
			defer eng.stop()
			addr = eng.addr
		}
	}
	start := startBare
	if eng == nil {
		start = startBareProcess
	}
	bare, err := start(ctx)
	if err != nil {
		return nil, err
	}
	defer bare.stop()

	targets, err := follow(ctx, addr, o.user, o.messages, o.body)
	if err != nil {
		return nil, err
	}
	where := "both in this process"
	if bare.own {
		where = "each in a process of its own"
	}
	fmt.Fprintf(out, "engage-load: %d connections, %s per run, %d messages, engage at %s, bare handler at %s (%s), GOMAXPROCS %d\n",
		o.concurrency, o.duration, o.messages, addr, bare.addr, where, gomaxprocs())
	fmt.Fprintf(out, "each target gets %s per kind, in alternating slices of %s\n", o.duration, o.slice)
	before, err := storedTotals(ctx, addr, o.user, targets)
	if err != nil {
		return nil, err
	}

	var results []result
	kinds := []string{"pixel", "click"}
	if o.kind != "both" {
		kinds = []string{o.kind}
	}
	acked := map[string]int{}
	if proc != nil && o.cpuprofile != "" {
		// The binary profiles itself for as long as the targets take turns.
		path := fmt.Sprintf("%s.engage-%d", o.cpuprofile, run)
		profiled := profileChild(ctx, proc.PprofAddr, time.Duration(len(kinds))*2*o.duration, path)
		defer func() {
			if err := <-profiled; err != nil {
				fmt.Fprintf(out, "engage's profile: %v\n", err)
			} else {
				fmt.Fprintf(out, "engage's profile of this run: %s\n", path)
			}
		}()
	}
	var cpu *cpuMeter // with -bin, each side's own CPU time
	if proc != nil && bare.pid != 0 {
		cpu = &cpuMeter{bare: bare.pid, engage: proc.Pid()}
	}
	for _, k := range kinds {
		if cpu != nil {
			cpu.start()
		}
		// The two targets take turns in short slices, so that whatever else the machine is doing
		// weighs on both alike and the ratio stays meaningful on a shared machine.
		bareURLs, engageURLs := bare.urls(k), targets.urls(k, addr)
		b, e := result{name: "bare " + k}, result{name: "engage " + k}
		for left := o.duration; left > 0; left -= o.slice {
			slice := min(left, o.slice)
			rb, err := drive(ctx, b.name, bareURLs, k, o.concurrency, slice)
			if err != nil {
				return nil, err
			}
			re, err := drive(ctx, e.name, engageURLs, k, o.concurrency, slice)
			if err != nil {
				return nil, err
			}
			b.add(rb)
			e.add(re)
		}
		b.sort()
		e.sort()
		e.ratio = e.rps() / b.rps()
		if cpu != nil {
			e.cpuRatio = cpu.stop(k, b.ok, e.ok)
		}
		results = append(results, b, e)
		acked[k] = e.ok
	}
	printTable(out, results)
	if cpu != nil {
		cpu.print(out)
	}
	switch {
	case eng != nil:
		printRecorder(out, eng.recorder.Stats())
	case proc != nil:
		// The counts only describe the run; without them the stored-versus-acknowledged check still stands.
		if st, err := scrapeRecorder(ctx, proc.MetricsAddr); err != nil {
			fmt.Fprintf(out, "recorder: counts not read: %v\n", err)
		} else {
			printRecorder(out, st)
		}
	}
	return results, check(ctx, out, addr, o.user, targets, before, acked, o.settle)
}

// check waits (up to settle) for the store to hold every acknowledged hit and reports the outcome; more
// stored than acknowledged can only be hits whose answer was lost, fewer is a lost event.
func check(ctx context.Context, out io.Writer, addr, user string, targets *followedSet, before totals, acked map[string]int, settle time.Duration) error {
	deadline := time.Now().Add(settle)
	for {
		now, err := storedTotals(ctx, addr, user, targets)
		if err != nil {
			return err
		}
		opens, clicks := now.opens-before.opens, now.clicks-before.clicks
		done := opens >= acked["pixel"] && clicks >= acked["click"]
		if done || time.Now().After(deadline) || ctx.Err() != nil {
			fmt.Fprintf(out, "stored vs acknowledged: opens %d / %d, clicks %d / %d: ", opens, acked["pixel"], clicks, acked["click"])
			if opens == acked["pixel"] && clicks == acked["click"] {
				fmt.Fprintln(out, "OK, every acknowledged hit stored once")
				return nil
			}
			if done {
				fmt.Fprintln(out, "OK, every acknowledged hit stored (the surplus were hits whose answer did not arrive)")
				return nil
			}
			fmt.Fprintln(out, "MISSING")
			return errors.New("acknowledged hits are missing from the store")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
