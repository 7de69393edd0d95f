package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/engage-email/engage/alerts"
	"github.com/engage-email/engage/attachments"
	"github.com/engage-email/engage/consent"
	"github.com/engage-email/engage/delivery"
	"github.com/engage-email/engage/feed"
	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/inbound"
	"github.com/engage-email/engage/recommend"
	"github.com/engage-email/engage/store/mongo"
	"github.com/engage-email/engage/store/sqlite"
)

// backend is every store interface Engage's features use, which each backend implements on one database.
type backend interface {
	followed.Store
	alerts.Store
	consent.Store
	recommend.Store
	recommend.TemplateStore
	recommend.Templates
	recommend.Outcomes
	recommend.ProfileSaver
	recommend.ColleagueStore
	delivery.Store
	delivery.OutboxStore
	attachments.Store
	inbound.Store
	feed.Store
	FollowedEraser() consent.Eraser
	AlertsEraser() consent.Eraser
	DeliveryEraser() consent.Eraser
	InboundEraser() consent.Eraser
	Ping(ctx context.Context) error
	Close() error
}

var (
	_ backend = (*sqlite.DB)(nil)
	_ backend = (*mongo.DB)(nil)
)

// openStore opens MongoDB when ENGAGE_MONGODB_URI is set (stopping start-up when no primary answers
// in time), else the embedded store in the data directory.
func openStore(ctx context.Context, cfg config, log *slog.Logger) (backend, error) {
	if cfg.MongoURI != "" {
		db, err := mongo.Open(ctx, cfg.MongoURI, mongo.Options{})
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		log.Info("store: MongoDB", "database", db.Database())
		return db, nil
	}
	db, err := sqlite.Open(ctx, filepath.Join(cfg.DataDir, "engage.db"), sqlite.Options{Synchronous: cfg.SQLiteSynchronous, Log: log})
	if err != nil {
		return nil, err
	}
	return db, nil
}
