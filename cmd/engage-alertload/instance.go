package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/engage-email/engage/cmd/internal/child"
)

// instance is an Engage process this tool started, so that its memory can be read from /proc.
type instance struct{ *child.Process }

func startInstance(ctx context.Context, bin, dataDir string) (*instance, error) {
	p, err := child.Start(ctx, bin, dataDir)
	if err != nil {
		return nil, err
	}
	return &instance{p}, nil
}

// rss is the child's resident set size in bytes.
func (c *instance) rss() (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", c.Pid()))
	if err != nil {
		return 0, fmt.Errorf("read RSS: %w", err)
	}
	defer f.Close()
	return parseVmRSS(f)
}

// parseVmRSS reads the VmRSS line of a /proc/<pid>/status file.
func parseVmRSS(r io.Reader) (int64, error) {
	s := bufio.NewScanner(r)
	for s.Scan() {
		rest, ok := strings.CutPrefix(s.Text(), "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("VmRSS line %q not understood", s.Text())
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("VmRSS line %q: %w", s.Text(), err)
		}
		return kb * 1024, nil
	}
	if err := s.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no VmRSS line")
}

// goroutines is how many goroutines the child runs, from its goroutine profile.
func (c *instance) goroutines(ctx context.Context) (int, error) {
	if c.PprofAddr == "" {
		return 0, errors.New("goroutines: the engage binary serves no profiles (ENGAGE_PPROF_ADDR)")
	}
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+c.PprofAddr+"/debug/pprof/goroutine?debug=1", nil)
	if err != nil {
		return 0, fmt.Errorf("goroutines: %w", err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("goroutines: %w", err)
	}
	defer res.Body.Close()
	return parseGoroutineTotal(res.Body)
}

// parseGoroutineTotal reads the "goroutine profile: total N" line that opens a debug=1 profile.
func parseGoroutineTotal(r io.Reader) (int, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && line == "" {
		return 0, fmt.Errorf("goroutine profile: %w", err)
	}
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), "goroutine profile: total ")
	n, err := strconv.Atoi(rest)
	if !ok || err != nil {
		return 0, fmt.Errorf("goroutine profile line %q not understood", line)
	}
	return n, nil
}
