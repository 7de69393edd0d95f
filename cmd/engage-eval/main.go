// Command engage-eval replays a synthetic population with known reading habits over several weeks and
// compares send-time policies: the Dynamics rule, the organisation's best hour, and Engage's model.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
)

// config is the scenario the command runs.
type config struct {
	seed       uint64
	weeks      int
	recipients int
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "engage-eval:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("engage-eval", flag.ContinueOnError)
	var cfg config
	fs.Uint64Var(&cfg.seed, "seed", 1, "random seed of the scenario")
	fs.IntVar(&cfg.weeks, "weeks", 12, "weeks replayed")
	fs.IntVar(&cfg.recipients, "recipients", 2000, "recipients in the population")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("parse flags: %w", err)
	}
	if cfg.weeks < 2 || cfg.weeks > 104 || cfg.recipients < 10 || cfg.recipients > 200000 {
		return fmt.Errorf("weeks must be 2-104 and recipients 10-200000, got %d and %d", cfg.weeks, cfg.recipients)
	}
	rep, err := evaluate(ctx, cfg)
	if err != nil {
		return err
	}
	return rep.write(out)
}
