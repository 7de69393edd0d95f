package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// child is an Engage process this tool started, so that its memory can be read from /proc.
type child struct {
	cmd       *exec.Cmd
	addr      string
	pprofAddr string // its runtime profiles, for goroutine counts
	done      chan error
}

func startChild(ctx context.Context, bin, dataDir string) (*child, error) {
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(os.Environ(), "ENGAGE_ADDR=127.0.0.1:0", "ENGAGE_DATA_DIR="+dataDir, "ENGAGE_SHUTDOWN_GRACE=5s",
		"ENGAGE_PPROF_ADDR=127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	c := &child{cmd: cmd, done: make(chan error, 1)}
	lines := bufio.NewScanner(stderr)
	for lines.Scan() {
		var l struct{ Msg, Addr string }
		if json.Unmarshal(lines.Bytes(), &l) != nil {
			continue
		}
		if l.Msg == "pprof listening" {
			c.pprofAddr = l.Addr
		}
		if l.Msg == "engage listening" {
			c.addr = l.Addr
			break
		}
	}
	go func() {
		io.Copy(io.Discard, stderr)
		c.done <- cmd.Wait()
	}()
	if c.addr == "" {
		c.stop()
		return nil, errors.New("engage did not start: its log never said it was listening")
	}
	return c, nil
}

func (c *child) stop() {
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(15 * time.Second):
		c.cmd.Process.Kill()
	}
}

// rss is the child's resident set size in bytes.
func (c *child) rss() (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
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
func (c *child) goroutines(ctx context.Context) (int, error) {
	if c.pprofAddr == "" {
		return 0, errors.New("goroutines: the engage binary serves no profiles (ENGAGE_PPROF_ADDR)")
	}
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+c.pprofAddr+"/debug/pprof/goroutine?debug=1", nil)
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
