package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/engage-email/engage/recommend"
)

// row is one policy's result.
type row struct {
	name string
	res  outcome
}

// report is what the command prints.
type report struct {
	cfg  config
	pop  *population
	reqs int
	rows []row
}

func evaluate(ctx context.Context, cfg config) (*report, error) {
	w, err := newWorld(cfg.seed, cfg.weeks, cfg.recipients)
	if err != nil {
		return nil, err
	}
	rep := &report{cfg: cfg, pop: w.pop, reqs: len(w.requests)}
	policies := []struct {
		name         string
		countMachine bool
		build        func(st *memStore) (chooser, error)
	}{
		{"Dynamics rule (Mon-Fri 8-17, recipient zone)", false, func(*memStore) (chooser, error) { return w.dynamicsRule(), nil }},
		{"Organisation's best hour", false, func(st *memStore) (chooser, error) { return w.orgBestHour(st), nil }},
		{"Engage", false, func(st *memStore) (chooser, error) { return w.engage(st, recommend.DefaultExplore) }},
		{"Engage without exploration", false, func(st *memStore) (chooser, error) { return w.engage(st, 0) }},
		{"Engage fed machine opens as human (ablation)", true, func(st *memStore) (chooser, error) { return w.engage(st, recommend.DefaultExplore) }},
	}
	for _, p := range policies {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("evaluate: %w", err)
		}
		st := newMemStore(w.pop, p.countMachine)
		choose, err := p.build(st)
		if err != nil {
			return nil, fmt.Errorf("evaluate %s: %w", p.name, err)
		}
		res, err := w.run(ctx, st, choose)
		if err != nil {
			return nil, fmt.Errorf("evaluate %s: %w", p.name, err)
		}
		rep.rows = append(rep.rows, row{p.name, res})
	}
	return rep, nil
}

func pct(n, d int) float64 {
	if d == 0 {
		return 0
	}
	return 100 * float64(n) / float64(d)
}

func lift(v, base float64) string {
	if base == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%+.1f%%", 100*(v/base-1))
}

func (r *report) write(out io.Writer) error {
	known, prefetch := 0, 0
	for _, p := range r.pop.people {
		if p.zoneKnown {
			known++
		}
		if p.prefetch || p.scanner {
			prefetch++
		}
	}
	n := len(r.pop.people)
	fmt.Fprintf(out, "Send-time evaluation: seed %d, %d recipients, %d weeks, %d emails\n", r.cfg.seed, n, r.cfg.weeks, r.reqs)
	fmt.Fprintf(out, "Population: %.0f%% zone on record, %.0f%% with machine opens or clicks at delivery; habits:", pct(known, n), pct(prefetch, n))
	for k := range kinds {
		fmt.Fprintf(out, " %s %.0f%%;", kindNames[k], pct(r.pop.kinds[k], n))
	}
	fmt.Fprintf(out, "\nEngaged = a human opened within %.0f h of delivery. Lift is relative to the Dynamics rule.\n\n", engagedWithin)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "policy\tengaged\tlift\tsecond half\tlift\tengaged within a week\tmean wait (h)\t")
	base, baseLate := r.rows[0].res, r.rows[0].res
	for _, row := range r.rows {
		s := row.res
		e, late := pct(s.engaged, s.deliveries), pct(s.lateEngaged, s.lateDeliveries)
		fmt.Fprintf(tw, "%s\t%.1f%%\t%s\t%.1f%%\t%s\t%.1f%%\t%.1f\t\n", row.name, e,
			lift(e, pct(base.engaged, base.deliveries)), late, lift(late, pct(baseLate.lateEngaged, baseLate.lateDeliveries)),
			pct(s.engagedWeek, s.deliveries), s.waitHours/float64(max(1, s.deliveries)))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}
