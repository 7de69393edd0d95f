// Command engage runs the Engage server: it reads the environment, opens the store, builds the
// features and serves until SIGINT or SIGTERM, then drains and stops.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	_ "time/tzdata" // mailbox time zones load on machines without a zone database

	"github.com/engage-email/engage/alerts"
	"github.com/engage-email/engage/consent"
	"github.com/engage-email/engage/delivery"
	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/graph"
	"github.com/engage-email/engage/recommend"
	"github.com/engage-email/engage/server"
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
	log := slog.New(server.LogHandler{Handler: slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: level})}).
		With("instance", cfg.Instance)
	// Prometheus metrics (ENGAGE_METRICS_ADDR) on a listener of their own, taken first: a busy port stops start-up.
	var metrics *metricsEndpoint // nil serves none, and its methods do nothing
	if cfg.MetricsAddr != "" {
		if metrics, err = listenMetrics(cfg.MetricsAddr); err != nil {
			return err
		}
	}
	defer metrics.close()

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	// The background loops below run on ctx. after(wait) cancels it before waiting for one, so that a
	// start-up step failing once some have started (a busy port, say) ends the process with its error
	// instead of waiting for a signal; after a signal, ctx is done already.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	after := func(wait func()) func() { return func() { cancel(); wait() } }
	db, err := openStore(ctx, cfg, log)
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
	// Consent decides who may be followed; its loop purges events past retention and picks up settings
	// changed on other instances. Other features' stores join Erasers as they come.
	consents, err := consent.NewService(ctx, db, consent.Options{Erasers: []consent.Eraser{db.FollowedEraser(), db.AlertsEraser(), db.DeliveryEraser(), db.InboundEraser()}, Log: log})
	if err != nil {
		return err
	}
	svc.SetGate(consents)
	go consents.Run(ctx, time.Minute)
	// Hits the store cannot take go to the spool; the recorder replays it (also what a crash left) and,
	// at shutdown after the server has drained, flushes its queue before the spool and then the store close.
	spool, err := followed.OpenSpool(filepath.Join(cfg.DataDir, "spool.log"), log)
	if err != nil {
		return err
	}
	defer spool.Close()
	// Alerts: first opens arrive from the recorder's commits; reminders, replies and clicks from its own
	// loops, which stop with ctx; every instance tails the stored alerts for its subscribers.
	alertSvc := alerts.New(db, db, alerts.Options{Instance: cfg.Instance, Sends: delivery.SendStates{Store: db}, Log: log})
	if err := alertSvc.Start(ctx); err != nil {
		return err
	}
	defer after(alertSvc.Wait)()
	recorder := followed.NewRecorder(db, followed.RecorderOptions{Log: log, Spool: spool, CommitTimeout: cfg.SpoolAfter,
		OnFirstOpen: alertSvc})
	recCtx, stopRecorder := context.WithCancel(context.WithoutCancel(ctx))
	go recorder.Run(recCtx)
	defer func() {
		stopRecorder()
		recorder.Wait()
		st := recorder.Stats()
		log.Info("recorder stopped", "recorded", st.Recorded, "spooled", st.Spooled, "replayed", st.Replayed,
			"failed", st.Failed, "spool_pending", st.SpoolPending)
	}()

	// Recommendations: the organisation's and domains' histograms are re-read at most every five minutes.
	sendTimes, err := recommend.NewSendTimes(recommend.Cached(db, 5*time.Minute, time.Now),
		rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())), recommend.DefaultExplore)
	if err != nil {
		return err
	}
	catalog, err := recommend.NewCatalog(db, db, db, time.Now, followed.NewID)
	if err != nil {
		return err
	}
	// Sending and sign-in: Microsoft 365 with a tenant, else the local outbox and the X-Engage-User header.
	md, err := newMode(ctx, cfg, db, nil)
	if err != nil {
		return err
	}
	// Replies, auto-replies and bounces: Graph's notifications (tenant) or the outbox's simulation (local).
	replies, waitReplies, err := startInbound(ctx, cfg, db, consents, svc, log)
	if err != nil {
		return err
	}
	defer after(waitReplies)()
	files, fileHandler, err := newAttachments(cfg, db, svc, consents, md, log)
	if err != nil {
		return err
	}
	labels, err := startMachines(ctx, cfg, db, recorder, log)
	if err != nil {
		return err
	}
	sends, waitSends := startDelivery(ctx, cfg.Instance, db, md, files, consents, labels, log)
	defer after(waitSends)()
	// Tenant mode: colleagues' time zones from their mailbox settings, for send-time recommendations.
	waitZones, err := startMailboxZones(ctx, cfg, db, md, log)
	if err != nil {
		return err
	}
	defer after(waitZones)()
	// Response feed: the CRM pulls records or receives signed webhooks; recipients may opt out by link.
	svc.SetOptOutLinks(cfg.OptOutLinks)
	feeds, optOuts, waitFeed := startFeed(ctx, cfg, db, recorder, consents, alertSvc, log)
	defer after(waitFeed)()
	srv, err := server.New(server.Options{
		BodyLimit:      cfg.BodyLimit,
		UploadLimit:    cfg.MaxAttachmentBytes + uploadSlack,
		AllowedOrigins: cfg.AllowedOrigins,
		Introspection:  cfg.Introspection,
		TrustedProxies: cfg.TrustedProxies,
		AddIn:          server.AddIn{PublicURL: cfg.PublicURL, ClientID: cfg.ClientID, Resource: cfg.APIAudience},
	}, server.Deps{
		Log:   log,
		Auth:  md.auth,
		Ready: db.Ping,
		Resolver: &graph.Resolver{Followed: svc, Consent: consents, Alerts: alertSvc, SendTimes: sendTimes, Catalog: catalog,
			Delivery: sends, LocalOutbox: md.outbox, Attachments: files, Feed: feeds},
		Files:     fileHandler,
		Keys:      keys,
		Devices:   devices,
		Recorder:  recorder,
		Labels:    labels,
		IPStorage: consents.IPStorage,
		Records:   consents.Records,
		Inbound:   replies,
		OptOuts:   optOuts,
		Metrics:   metrics.registerer(),
	})
	if err != nil {
		return err
	}
	if cfg.PprofAddr != "" {
		if err := servePprof(ctx, cfg.PprofAddr, log); err != nil {
			return err
		}
	}
	metrics.serve(log)
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	log.Info("engage listening", "addr", ln.Addr().String(), "public_url", cfg.PublicURL, "data_dir", cfg.DataDir, "mode", md.name)
	for _, r := range ready {
		r <- ln.Addr().String()
	}
	return srv.Serve(ctx, ln, cfg.ShutdownGrace)
}
