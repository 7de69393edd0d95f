package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"
)

// bare serves the same GIF (and a redirect) with no storage at all: the ceiling Engage is measured against.
type bare struct {
	addr string
	own  bool // in a process of its own
	pid  int  // of that process
	stop func()
}

var gif = []byte{
	0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
	0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
	0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
}

func bareServer(ctx context.Context) *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /t/o/{token}", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "image/gif")
		h.Set("Cache-Control", "no-store, no-cache, must-revalidate, private, max-age=0")
		h.Set("Content-Length", "43")
		w.Write(gif)
	})
	mux.HandleFunc("GET /t/c/{token}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store, private")
		http.Redirect(w, r, "https://example.com/offer", http.StatusFound)
	})
	return &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
}

// startBare serves the bare handler in this process, beside an in-process Engage.
func startBare(ctx context.Context) (*bare, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	hs := bareServer(ctx)
	go labelled("bare", func() { hs.Serve(ln) })
	return &bare{addr: ln.Addr().String(), stop: func() { hs.Close() }}, nil
}

// serveBareEnv, set to 1, makes this program serve the bare handler alone (serveBare).
const serveBareEnv = "ENGAGE_LOAD_SERVE_BARE"

// startBareProcess runs this program again as the bare handler alone. An Engage in a process of its
// own pays for being one (every hit is handed from one process to another), which a bare handler in
// the load's process does not: measured against that one, the deployed binary came out about 0.1
// lower than against a bare handler in a process of its own (see the README).
func startBareProcess(ctx context.Context) (*bare, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("bare handler process: %w", err)
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), serveBareEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("bare handler process: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("bare handler process: %w", err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bare handler process: %w", err)
	}
	stop := func() {
		stdin.Close() // the child serves until its standard input closes
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), bareListening)
	if err != nil || !ok {
		stop()
		return nil, fmt.Errorf("bare handler process: it did not say where it listens (%q, %v)", line, err)
	}
	return &bare{addr: addr, own: true, pid: cmd.Process.Pid, stop: stop}, nil
}

const bareListening = "bare handler listening on "

// serveBare is the child's side of startBareProcess: it serves the bare handler on a free loopback
// port, says where on out, and returns when in closes, which it does when the parent is done or gone.
func serveBare(ctx context.Context, in io.Reader, out io.Writer) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	hs := bareServer(ctx)
	go hs.Serve(ln)
	if _, err := fmt.Fprintln(out, bareListening+ln.Addr().String()); err != nil {
		hs.Close()
		return fmt.Errorf("bare handler: %w", err)
	}
	io.Copy(io.Discard, in)
	return hs.Close()
}

func (b *bare) urls(kind string) []string {
	p := "/t/o/bare.gif"
	if kind == "click" {
		p = "/t/c/bare"
	}
	return []string{"http://" + b.addr + p}
}
