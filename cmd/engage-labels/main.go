// Command engage-labels measures the machine-open and bot-click rules against a labelled corpus,
// printing precision and recall per reason, so rule changes are judged on evidence.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/engage-email/engage/machines"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "engage-labels:", err)
		stop()
		os.Exit(1)
	}
}

// errMismatch says the report was printed but some hits were not labelled as the corpus says.
var errMismatch = errors.New("labelled other than the corpus says (not known misses)")

func run(_ context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("engage-labels", flag.ContinueOnError)
	corpusPath := fs.String("corpus", "machines/testdata/corpus.json", "labelled corpus (JSON)")
	rulesPath := fs.String("rules", "", "rules file (JSON); the built-in rules when empty")
	dumpRules := fs.Bool("print-default-rules", false, "print the built-in rules file and exit")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("parse flags: %w", err)
	}
	if *dumpRules {
		if _, err := stdout.Write(machines.DefaultRulesJSON()); err != nil {
			return fmt.Errorf("print rules: %w", err)
		}
		return nil
	}
	rules := machines.DefaultRules()
	if *rulesPath != "" {
		r, err := machines.ReadRulesFile(*rulesPath)
		if err != nil {
			return err
		}
		rules = r
	}
	data, err := os.ReadFile(*corpusPath)
	if err != nil {
		return fmt.Errorf("read corpus (run from the module root or pass -corpus): %w", err)
	}
	cases, err := machines.ReadCorpus(data)
	if err != nil {
		return fmt.Errorf("corpus %s: %w", *corpusPath, err)
	}
	outcomes := machines.Evaluate(rules, cases)
	if err := machines.WriteReport(stdout, outcomes); err != nil {
		return err
	}
	if bad := machines.Unexpected(outcomes); len(bad) > 0 {
		return fmt.Errorf("%d hits: %w", len(bad), errMismatch)
	}
	return nil
}
