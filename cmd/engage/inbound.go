package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/engage-email/engage/consent"
	"github.com/engage-email/engage/inbound"
	"github.com/engage-email/engage/m365"
)

// startInbound runs the reply, auto-reply and bounce pipeline until ctx ends: in local mode it takes the
// outbox's simulated mail only; with a tenant it also keeps Inbox subscriptions through Graph, whose
// notifications reach ENGAGE_PUBLIC_URL/hooks/graph. Both backends keep its queue. The returned wait
// lets an item under way finish before the store closes. tokens ties replies to mail the Outlook add-in
// had Outlook send, through its copy in the sender's Sent Items.
func startInbound(ctx context.Context, cfg config, db backend, consents *consent.Service, tokens inbound.Tokens, log *slog.Logger) (*inbound.Processor, func(), error) {
	var mailbox inbound.Mailbox
	if cfg.TenantID != "" {
		client, err := m365.New(ctx, m365.Config{TenantID: cfg.TenantID, ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
			CertificatePath: cfg.ClientCertificate, GraphURL: cfg.GraphURL, AuthorityURL: cfg.AuthorityURL})
		if err != nil {
			return nil, nil, fmt.Errorf("inbound: %w", err)
		}
		mailbox = m365.NewInbox(client)
	}
	proc := inbound.NewProcessor(db, db, consents, mailbox, inbound.Options{Instance: cfg.Instance, Log: log})
	proc.SetTokens(tokens)
	var mgr *inbound.Manager
	if mailbox != nil {
		base := strings.TrimRight(cfg.PublicURL, "/")
		var err error
		mgr, err = inbound.NewManager(db, mailbox, proc, inbound.ManagerOptions{NotificationURL: base + "/hooks/graph",
			LifecycleURL: base + "/hooks/graph/lifecycle", Log: log})
		if err != nil {
			log.Warn("Inbox subscriptions are off: Graph needs an https ENGAGE_PUBLIC_URL to notify", "err", err)
		}
	}
	done := make(chan struct{}, 2)
	n := 1
	go func() { proc.Run(ctx); done <- struct{}{} }()
	if mgr != nil {
		n++
		go func() { mgr.Run(ctx); done <- struct{}{} }()
	}
	return proc, func() {
		for range n {
			<-done
		}
	}, nil
}
