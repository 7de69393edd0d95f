package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/engage-email/engage/auth"
	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/graph"
	"github.com/engage-email/engage/server"
	"github.com/engage-email/engage/store/sqlite"
)

// engage is an Engage wired as cmd/engage wires it (store, spool, recorder, server), on a loopback port.
type engage struct {
	addr     string
	recorder *followed.Recorder
	stop     func()
}

func startEngage(ctx context.Context, dir string) (*engage, error) {
	log := slog.New(server.LogHandler{Handler: slog.NewJSONHandler(io.Discard, nil)})
	db, err := sqlite.Open(ctx, filepath.Join(dir, "engage.db"), sqlite.Options{})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("listen: %w", err)
	}
	addr := ln.Addr().String()
	fail := func(err error) (*engage, error) { ln.Close(); db.Close(); return nil, err }
	keys, err := followed.LoadOrCreateKeyRing(dir, "")
	if err != nil {
		return fail(err)
	}
	devices, err := followed.NewDeviceParser()
	if err != nil {
		return fail(err)
	}
	svc, err := followed.NewService(db, keys, "http://"+addr, followed.Limits{})
	if err != nil {
		return fail(err)
	}
	spool, err := followed.OpenSpool(filepath.Join(dir, "spool.log"), log)
	if err != nil {
		return fail(err)
	}
	rec := followed.NewRecorder(db, followed.RecorderOptions{Log: log, Spool: spool})
	recCtx, stopRec := context.WithCancel(context.WithoutCancel(ctx))
	go labelled("engage", func() { rec.Run(recCtx) })
	srv, err := server.New(server.Options{}, server.Deps{Log: log, Auth: auth.NewLocal(nil), Ready: db.Ping,
		Resolver: &graph.Resolver{Followed: svc}, Keys: keys, Devices: devices, Recorder: rec})
	if err != nil {
		stopRec()
		rec.Wait()
		spool.Close()
		return fail(err)
	}
	srvCtx, stopSrv := context.WithCancel(context.WithoutCancel(ctx))
	served := make(chan struct{})
	go labelled("engage", func() { defer close(served); srv.Serve(srvCtx, ln, 5*time.Second) })
	return &engage{addr: addr, recorder: rec, stop: func() {
		stopSrv()
		<-served
		stopRec()
		rec.Wait()
		spool.Close()
		db.Close()
	}}, nil
}

// bare serves the same GIF (and a redirect) with no storage at all: the ceiling Engage is measured against.
type bare struct {
	addr string
	stop func()
}

var gif = []byte{
	0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
	0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
	0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
}

func startBare(ctx context.Context) (*bare, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
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
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	go labelled("bare", func() { hs.Serve(ln) })
	return &bare{addr: ln.Addr().String(), stop: func() { hs.Close() }}, nil
}

func (b *bare) urls(kind string) []string {
	p := "/t/o/bare.gif"
	if kind == "click" {
		p = "/t/c/bare"
	}
	return []string{"http://" + b.addr + p}
}

// labelled runs fn with the profiler label side=who; goroutines fn starts (a server's connections, the
// store's writer) inherit it, so a -cpuprofile splits the machine's time between the two servers and
// the load itself ("go tool pprof -tags").
func labelled(who string, fn func()) {
	pprof.Do(context.Background(), pprof.Labels("side", who), func(context.Context) { fn() })
}

func loopbackAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-addr %q: want host:port", addr)
	}
	ips, err := net.LookupIP(host)
	if err != nil || len(ips) == 0 {
		return fmt.Errorf("-addr %q: cannot resolve %s", addr, host)
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return fmt.Errorf("-addr %q: the load tool drives loopback addresses only", addr)
		}
	}
	return nil
}
