// Command engage-migrate copies an Engage store to another, embedded or MongoDB, table by table
// through each backend's store.Dumper, then verifies that every table holds as many rows as the source.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/engage-email/engage/store"
	"github.com/engage-email/engage/store/mongo"
	"github.com/engage-email/engage/store/sqlite"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "engage-migrate:", err)
		os.Exit(1)
	}
}

// opened is a store the command copies from or to.
type opened interface {
	store.Dumper
	Close() error
}

// open opens "sqlite:<path>" (the path must exist for a source) or a mongodb:// or mongodb+srv:// URI.
func open(ctx context.Context, spec string, source bool) (opened, error) {
	switch {
	case strings.HasPrefix(spec, "sqlite:"):
		path := strings.TrimPrefix(spec, "sqlite:")
		if source {
			if _, err := os.Stat(path); err != nil {
				return nil, fmt.Errorf("source %s: %w", path, err)
			}
		}
		return sqlite.Open(ctx, path, sqlite.Options{})
	case strings.HasPrefix(spec, "mongodb://"), strings.HasPrefix(spec, "mongodb+srv://"):
		return mongo.Open(ctx, spec, mongo.Options{})
	}
	return nil, fmt.Errorf("%q: want sqlite:<path to engage.db> or a mongodb:// URI", spec)
}

// Counted is one table's row count in the source and the destination after the copy.
type Counted struct {
	Table          string
	Source, Copied int64
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("engage-migrate", flag.ContinueOnError)
	fs.SetOutput(out)
	from := fs.String("from", "", "source store: sqlite:<path> or a mongodb:// URI")
	to := fs.String("to", "", "destination store: sqlite:<path> or a mongodb:// URI")
	batch := fs.Int("batch", 500, "rows per import call")
	force := fs.Bool("force", false, "copy into a destination that already holds rows (to finish a copy cut short)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *from == "" || *to == "" || *batch < 1 {
		return errors.New("usage: engage-migrate -from sqlite:./engage-data/engage.db -to mongodb://host:27017/engage")
	}
	src, err := open(ctx, *from, true)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := open(ctx, *to, false)
	if err != nil {
		return err
	}
	defer dst.Close()
	counts, err := Copy(ctx, src, dst, *batch, *force)
	for _, c := range counts {
		fmt.Fprintf(out, "%-20s %10d %10d\n", c.Table, c.Source, c.Copied)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "copied %d tables; every count matches\n", len(counts))
	return nil
}

// Copy copies every table of src into dst in batches and returns both counts per table; it fails
// when dst lacks one of src's tables, already holds data (unless force), or a count differs.
func Copy(ctx context.Context, src, dst store.Dumper, batch int, force bool) ([]Counted, error) {
	tables, err := src.Tables(ctx)
	if err != nil {
		return nil, err
	}
	have, err := dst.Tables(ctx)
	if err != nil {
		return nil, err
	}
	known := map[string]bool{}
	for _, t := range have {
		known[t] = true
	}
	for _, t := range tables {
		if !known[t] {
			return nil, fmt.Errorf("destination has no table %s: is it an older Engage?", t)
		}
		// A fresh store holds only its bookkeeping (the engagement cursor), which the copy replaces.
		if n, err := dst.Count(ctx, t); err != nil {
			return nil, err
		} else if n > 0 && !force && t != "alert_cursors" {
			return nil, fmt.Errorf("destination table %s already holds %d rows: copy into an empty store, or pass -force to finish a copy cut short", t, n)
		}
	}
	var counts []Counted
	for _, t := range tables {
		rows := make([]store.Row, 0, batch)
		flush := func() error {
			if err := dst.Import(ctx, t, rows); err != nil {
				return fmt.Errorf("copy %s: %w", t, err)
			}
			rows = rows[:0]
			return nil
		}
		if err := src.Export(ctx, t, func(r store.Row) error {
			rows = append(rows, r)
			if len(rows) == batch {
				return flush()
			}
			return nil
		}); err != nil {
			return counts, err
		}
		if err := flush(); err != nil {
			return counts, err
		}
		c := Counted{Table: t}
		if c.Source, err = src.Count(ctx, t); err != nil {
			return counts, err
		}
		if c.Copied, err = dst.Count(ctx, t); err != nil {
			return counts, err
		}
		counts = append(counts, c)
		if c.Source != c.Copied {
			return counts, fmt.Errorf("table %s: source holds %d rows, destination %d", t, c.Source, c.Copied)
		}
	}
	return counts, nil
}
