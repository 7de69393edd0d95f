package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/engage-email/engage/auth"
	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/graph"
	"github.com/engage-email/engage/server"
	"github.com/engage-email/engage/store/sqlite"
)

// engage is an in-process Engage with the tracking path wired as cmd/engage wires it (store, spool,
// recorder, server) on a loopback port, but none of what cmd/engage runs beside it (machine labelling,
// consent checks, alerts and the other background work): -bin measures all of that.
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
