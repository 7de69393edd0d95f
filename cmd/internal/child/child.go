// Package child runs an Engage binary as a child process on a loopback port and a data directory of
// its own, for the tools that measure Engage from outside, as it is deployed.
package child

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"
)

// Process is a running Engage binary.
type Process struct {
	Addr        string // where it serves, from its "engage listening" log line
	PprofAddr   string // its runtime profiles
	MetricsAddr string // its Prometheus metrics, when env gives it ENGAGE_METRICS_ADDR
	cmd         *exec.Cmd
	done        chan error
}

// Start runs bin in local mode on a free loopback port with dataDir as its data directory, adding env
// to its environment, and returns once its log says it is listening.
func Start(ctx context.Context, bin, dataDir string, env ...string) (*Process, error) {
	// A bare name such as "engage" means the file here, as a path does, not a command looked up in PATH.
	path, err := filepath.Abs(bin)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	cmd := exec.CommandContext(ctx, path)
	cmd.Env = append(os.Environ(), "ENGAGE_ADDR=127.0.0.1:0", "ENGAGE_DATA_DIR="+dataDir, "ENGAGE_SHUTDOWN_GRACE=5s",
		"ENGAGE_PPROF_ADDR=127.0.0.1:0")
	cmd.Env = append(cmd.Env, env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &Process{cmd: cmd, done: make(chan error, 1)}
	started, scanned := make(chan error, 1), make(chan struct{})
	go func() {
		// On Linux the child is killed when the thread that started it ends (dieWithParent). So it is
		// started on a thread of its own that lives until it has exited: one the goroutine never lets
		// go, which ends with it. A tool killed by SIGKILL, which runs no clean-up, leaves no Engage
		// running.
		runtime.LockOSThread()
		dieWithParent(cmd)
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		<-scanned // Wait closes the pipe, so it may start only once Start's reads are over
		io.Copy(io.Discard, stderr)
		p.done <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	lines := bufio.NewScanner(stderr)
	for lines.Scan() {
		var l struct{ Msg, Addr string }
		if json.Unmarshal(lines.Bytes(), &l) != nil {
			continue
		}
		switch l.Msg {
		case "pprof listening":
			p.PprofAddr = l.Addr
		case "metrics listening":
			p.MetricsAddr = l.Addr
		}
		if l.Msg == "engage listening" {
			p.Addr = l.Addr
			break
		}
	}
	close(scanned)
	if p.Addr == "" {
		p.Stop()
		return nil, errors.New("engage did not start: its log never said it was listening")
	}
	return p, nil
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Stop asks Engage to shut down and kills it if it has not within 15 s.
func (p *Process) Stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}
