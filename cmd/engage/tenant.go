package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/engage-email/engage/attachments"
	"github.com/engage-email/engage/auth"
	"github.com/engage-email/engage/delivery"
	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/m365"
	"github.com/engage-email/engage/recommend"
	"github.com/engage-email/engage/server"
)

// mode is what differs between local mode and a Microsoft 365 tenant: who callers are and where mail goes.
type mode struct {
	name   string
	auth   server.Authenticator
	mailer delivery.Mailer
	outbox *delivery.Outbox       // local mode only
	drive  attachments.Drive      // tenant mode: the sender's OneDrive; nil: the local file store
	zones  recommend.MailboxZones // tenant mode: colleagues' mailbox time zones; nil in local mode
}

// newMode builds local mode (header identity, local outbox) or, with a tenant, Entra ID sign-in and
// Microsoft Graph; ctx bounds the Entra ID key refresh.
func newMode(ctx context.Context, cfg config, db backend, httpClient *http.Client) (mode, error) {
	if cfg.TenantID == "" {
		outbox := delivery.NewOutbox(db, time.Now)
		return mode{name: "local", auth: auth.NewLocal(cfg.Admins).WithIntegrations(cfg.Integrations), mailer: outbox, outbox: outbox}, nil
	}
	verifier, err := auth.NewEntraVerifier(ctx, auth.EntraConfig{TenantID: cfg.TenantID, Audience: cfg.APIAudience,
		AuthorityURL: cfg.AuthorityURL, HTTPClient: httpClient})
	if err != nil {
		return mode{}, fmt.Errorf("tenant mode: %w", err)
	}
	client, err := m365.New(ctx, m365.Config{TenantID: cfg.TenantID, ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
		CertificatePath: cfg.ClientCertificate, GraphURL: cfg.GraphURL, AuthorityURL: cfg.AuthorityURL, HTTPClient: httpClient})
	if err != nil {
		return mode{}, fmt.Errorf("tenant mode: %w", err)
	}
	return mode{name: "tenant", auth: auth.NewTenant(verifier), mailer: m365.NewMailer(client), drive: m365.NewDrive(client),
		zones: m365.NewZones(client)}, nil
}

// startDelivery runs the send worker until ctx ends, attaching files from the attachment store; the
// returned wait lets a send under way finish before the store closes.
func startDelivery(ctx context.Context, instance string, db backend, m mode, files delivery.Files, gate followed.Gate,
	labels *followed.Labeller, log *slog.Logger) (*delivery.Service, func()) {
	opts := delivery.Options{Instance: instance, Files: files, Gate: gate, Log: log}
	if labels != nil {
		opts.OnSend = labels.Sent
	}
	sends := delivery.New(db, db, m.mailer, opts)
	done := make(chan struct{})
	go func() { defer close(done); sends.Run(ctx) }()
	return sends, func() { <-done }
}

// startMailboxZones, in tenant mode, reads colleagues' time zones from their mailbox settings in the
// background until ctx ends; the returned wait lets a pass under way finish before the store closes.
func startMailboxZones(ctx context.Context, cfg config, db backend, m mode, log *slog.Logger) (func(), error) {
	if m.zones == nil {
		return func() {}, nil
	}
	sync, err := recommend.NewMailboxSync(db, m.zones, recommend.MailboxSyncOptions{Domains: cfg.TenantDomains, Log: log})
	if err != nil {
		return nil, fmt.Errorf("mailbox time zones: %w", err)
	}
	done := make(chan struct{})
	go func() { defer close(done); sync.Run(ctx) }()
	return func() { <-done }, nil
}
