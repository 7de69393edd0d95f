package main

import (
	"context"
	"log/slog"

	"github.com/engage-email/engage/alerts"
	"github.com/engage-email/engage/consent"
	"github.com/engage-email/engage/feed"
	"github.com/engage-email/engage/followed"
)

// startFeed starts the response feed's webhook dispatcher, which stops with ctx (wait waits for it),
// and builds the opt-out handler. The feed is nil, and its operations answer UNAVAILABLE, when the
// store cannot serve it; opt-outs work on every store.
func startFeed(ctx context.Context, cfg config, store followed.Store, recorder *followed.Recorder, consents *consent.Service,
	alertSvc *alerts.Service, log *slog.Logger) (svc *feed.Service, optOuts *feed.OptOuts, wait func()) {
	optOuts = feed.NewOptOuts(store, recorder, consents)
	fs, ok := store.(feed.Store)
	if !ok {
		log.Warn("feed: this store keeps no response feed; responses and webhooks are unavailable")
		return nil, optOuts, func() {}
	}
	svc = feed.NewService(fs, feed.Options{Instance: cfg.Instance, Destinations: feed.Destinations{AllowHTTP: cfg.WebhookAllowHTTP,
		AllowPrivate: cfg.WebhookAllowPrivate}, Alerts: alertSvc, Admins: cfg.Admins, Log: log})
	done := make(chan struct{})
	go func() { defer close(done); svc.Run(ctx) }()
	return svc, optOuts, func() { <-done }
}
