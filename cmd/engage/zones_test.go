package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/m365"
	"github.com/engage-email/engage/m365/m365test"
	"github.com/engage-email/engage/m365/m365test/entratest"
	"github.com/engage-email/engage/store/sqlite"
)

// passSignal forwards the mailbox sync's pass summaries, so the test waits on a pass, not on time.
type passSignal struct{ passes chan slog.Record }

func (h passSignal) Enabled(context.Context, slog.Level) bool { return true }
func (h passSignal) Handle(_ context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, "mailbox time zones") {
		h.passes <- r
	}
	return nil
}
func (h passSignal) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h passSignal) WithGroup(string) slog.Handler      { return h }

// TestMailboxZonesInTenantMode wires the sync as run does: the real Graph client (app-only, against the
// fake Graph and Entra ID) and the embedded store; a colleague's Outlook zone becomes their profile.
func TestMailboxZonesInTenantMode(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	authority, graph := entratest.New(t), m365test.NewGraph(t)
	graph.VerifyTokens(authority)
	graph.SetMailboxSettings("amy@contoso.com", m365test.DefaultMailboxSettings("Romance Standard Time"))
	client, err := m365.New(ctx, m365.Config{TenantID: entratest.TenantID, ClientID: entratest.ClientID, ClientSecret: entratest.ClientSecret,
		GraphURL: graph.URL(), AuthorityURL: authority.URL(), HTTPClient: m365test.Client(authority, graph)})
	if err != nil {
		t.Fatal(err)
	}
	db := sqlite.OpenTemp(t)
	m := followed.Message{ID: "m1", Owner: "rep@contoso.com", Subject: "Team", HTML: "<p>Team</p>", Following: true, CreatedAt: time.Now(),
		Warnings: []string{}, Recipients: []followed.Recipient{{Email: "amy@contoso.com", Kind: followed.KindTo},
			{Email: "ann@fabrikam.com", Kind: followed.KindTo}}}
	m.Renders = []followed.Render{{Index: 0, Recipient: followed.Shared, Targets: []int{0, 1}, HTML: "shared", Tracked: true}}
	if err := db.CreateMessage(ctx, m); err != nil {
		t.Fatal(err)
	}
	logs := passSignal{passes: make(chan slog.Record, 4)}
	wait, err := startMailboxZones(ctx, config{TenantDomains: []string{"contoso.com"}}, db, mode{zones: m365.NewZones(client)}, slog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	r := <-logs.passes
	cancel()
	wait()
	if r.Message != "mailbox time zones" {
		t.Errorf("first pass logged %q, want a summary", r.Message)
	}
	p, err := db.Profiles(context.Background(), []string{"amy@contoso.com", "ann@fabrikam.com"})
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 1 || p["amy@contoso.com"].Location.String() != "Europe/Paris" || p["amy@contoso.com"].Source != "mailbox" {
		t.Errorf("profiles = %+v, want amy in Europe/Paris from her mailbox and no one else", p)
	}
	for _, req := range graph.Requests() {
		if strings.Contains(req.Path, "fabrikam") {
			t.Errorf("Graph was asked about an outsider: %s", req.Path)
		}
	}
}
