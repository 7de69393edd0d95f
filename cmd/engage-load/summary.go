package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// printSummary gives, for each Engage row, its ratio and p99 in every run with their median, so that
// a figure is read as the spread of a machine's runs rather than one draw from it; and, when every run
// read them, the ratio of CPU time per hit, the steadier figure for comparing builds.
func printSummary(out io.Writer, runs [][]result) {
	fmt.Fprintf(out, "over %d runs (each run's figure, then the median):\n", len(runs))
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	var names []string
	withCPU := true
	for _, run := range runs {
		for _, r := range run {
			if r.ratio > 0 && r.cpuRatio == 0 {
				withCPU = false
			}
		}
	}
	for _, r := range runs[0] {
		if r.ratio > 0 {
			names = append(names, r.name)
		}
	}
	header := "target\tratio to bare\tmedian\tp99\tmedian\t"
	if withCPU {
		header += "CPU ratio\tmedian\t"
	}
	fmt.Fprintln(tw, header)
	for _, name := range names {
		var ratios, cpus []float64
		var p99s []time.Duration
		for _, run := range runs {
			for _, r := range run {
				if r.name == name {
					ratios = append(ratios, r.ratio)
					p99s = append(p99s, r.quantile(0.99))
					cpus = append(cpus, r.cpuRatio)
				}
			}
		}
		rs, ps, cs := make([]string, len(ratios)), make([]string, len(p99s)), make([]string, len(cpus))
		for i := range ratios {
			rs[i], ps[i], cs[i] = fmt.Sprintf("%.2f", ratios[i]), ms(p99s[i]), fmt.Sprintf("%.2f", cpus[i])
		}
		fmt.Fprintf(tw, "%s\t%s\t%.2f\t%s\t%s\t", name, strings.Join(rs, " "), median(ratios),
			strings.Join(ps, " "), ms(median(p99s)))
		if withCPU {
			fmt.Fprintf(tw, "%s\t%.2f\t", strings.Join(cs, " "), median(cpus))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

// median is the middle value of xs, or the mean of the two middle ones.
func median[T float64 | time.Duration](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
