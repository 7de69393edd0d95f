// Command engage runs the Engage server: it reads the environment, opens the store, builds the
// features and serves until SIGINT or SIGTERM, then drains and stops.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/engage-email/engage/auth"
	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/graph"
	"github.com/engage-email/engage/server"
	"github.com/engage-email/engage/store/sqlite"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "engage:", err)
		os.Exit(1)
	}
}

// run serves until ctx is done; ready, when not nil, receives the address once listening.
func run(ctx context.Context, getenv func(string) string, logOut io.Writer, ready ...chan<- string) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(strings.ToUpper(cfg.LogLevel)))
	log := slog.New(server.LogHandler{Handler: slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: level})})

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	db, err := sqlite.Open(ctx, filepath.Join(cfg.DataDir, "engage.db"), sqlite.Options{Synchronous: cfg.SQLiteSynchronous})
	if err != nil {
		return err
	}
	defer db.Close()
	keys, err := followed.LoadOrCreateKeyRing(cfg.DataDir, cfg.TrackingKey)
	if err != nil {
		return err
	}
	devices, err := followed.NewDeviceParser()
	if err != nil {
		return err
	}
	svc, err := followed.NewService(db, keys, cfg.PublicURL, followed.Limits{MaxHTMLBytes: cfg.MaxHTMLBytes})
	if err != nil {
		return err
	}
	recorder := followed.NewRecorder(db, followed.RecorderOptions{Log: log})
	recCtx, stopRecorder := context.WithCancel(context.WithoutCancel(ctx))
	go recorder.Run(recCtx)
	defer func() { stopRecorder(); recorder.Wait() }()

	srv, err := server.New(server.Options{
		BodyLimit:      cfg.BodyLimit,
		AllowedOrigins: cfg.AllowedOrigins,
		Introspection:  cfg.Introspection,
		TrustedProxies: cfg.TrustedProxies,
	}, server.Deps{
		Log:      log,
		Auth:     auth.NewLocal(cfg.Admins),
		Ready:    db.Ping,
		Resolver: &graph.Resolver{Followed: svc},
		Keys:     keys,
		Devices:  devices,
		Recorder: recorder,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	log.Info("engage listening", "addr", ln.Addr().String(), "public_url", cfg.PublicURL, "data_dir", cfg.DataDir, "mode", "local")
	for _, r := range ready {
		r <- ln.Addr().String()
	}
	return srv.Serve(ctx, ln, cfg.ShutdownGrace)
}
