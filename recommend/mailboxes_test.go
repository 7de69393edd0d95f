package recommend_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/recommend"
	"github.com/engage-email/engage/store/sqlite"
)

// graphZones stands in for Microsoft Graph's mailbox settings (the only fake allowed: Microsoft's cloud).
type graphZones struct {
	mu     sync.Mutex
	zones  map[string]string // address -> IANA zone; absent: no mailbox
	faults map[string]int    // address -> how many more lookups fail
	asked  []string
}

func (g *graphZones) MailboxZone(_ context.Context, email string) (*time.Location, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.asked = append(g.asked, email)
	if g.faults[email] > 0 {
		g.faults[email]--
		return nil, errors.New("graph answered 503 Service Unavailable")
	}
	zone, ok := g.zones[email]
	if !ok {
		return nil, fmt.Errorf("graph answered 404: %w", recommend.ErrNoMailbox)
	}
	return time.LoadLocation(zone)
}

func (g *graphZones) set(email, zone string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.zones[email] = zone
}

// takeAsked returns the addresses asked since the last call.
func (g *graphZones) takeAsked() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := g.asked
	g.asked = nil
	return out
}

var t0 = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

// seedColleagues stores one followed message from rep@contoso.com to colleagues and an outsider, and a
// zone a salesperson entered for dan.
func seedColleagues(t *testing.T, db *sqlite.DB) {
	t.Helper()
	ctx := context.Background()
	emails := []string{"abe@contoso.com", "ada@contoso.com", "amy@contoso.com", "bob@contoso.com", "dan@contoso.com",
		"eve@fabrikam.com", "flaky@contoso.com"}
	m := followed.Message{ID: "m1", Owner: "rep@contoso.com", Subject: "Team", HTML: "<p>Team</p>", Following: true,
		CreatedAt: t0, Warnings: []string{}}
	targets := make([]int, len(emails))
	for i, e := range emails {
		m.Recipients = append(m.Recipients, followed.Recipient{Email: e, Kind: followed.KindTo})
		targets[i] = i
	}
	m.Renders = []followed.Render{{Index: 0, Recipient: followed.Shared, Targets: targets, HTML: "shared", Tracked: true}}
	if err := db.CreateMessage(ctx, m); err != nil {
		t.Fatal(err)
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SaveProfile(ctx, recommend.Profile{Recipient: "dan@contoso.com", Location: berlin, Source: recommend.SourceProfile},
		t0.Add(-100*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
}

// TestMailboxSyncPasses runs passes on a fake clock against the embedded store: bounded per pass,
// missing mailboxes left alone for a day without starving the others, failures tried again, stale
// mailbox zones refreshed, entered zones and outsiders never asked about.
func TestMailboxSyncPasses(t *testing.T) {
	ctx := context.Background()
	db := sqlite.OpenTemp(t)
	seedColleagues(t, db)
	graph := &graphZones{zones: map[string]string{"amy@contoso.com": "Europe/Paris", "bob@contoso.com": "America/New_York",
		"flaky@contoso.com": "Asia/Tokyo", "dan@contoso.com": "Asia/Tokyo", "eve@fabrikam.com": "Asia/Tokyo"},
		faults: map[string]int{"flaky@contoso.com": 1}}
	now := t0
	sync, err := recommend.NewMailboxSync(db, graph, recommend.MailboxSyncOptions{PerTick: 2, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name  string
		at    time.Time
		edit  func()
		asked []string
		want  recommend.MailboxSyncStats
	}{
		{name: "first pass asks the first two", at: t0.Add(time.Minute),
			asked: []string{"abe@contoso.com", "ada@contoso.com"}, want: recommend.MailboxSyncStats{Looked: 2, NoMailbox: 2}},
		{name: "missing mailboxes are skipped, the next page is asked", at: t0.Add(2 * time.Minute),
			asked: []string{"amy@contoso.com", "bob@contoso.com"}, want: recommend.MailboxSyncStats{Looked: 2, Saved: 2}},
		{name: "a failure is logged and skipped", at: t0.Add(3 * time.Minute),
			asked: []string{"flaky@contoso.com"}, want: recommend.MailboxSyncStats{Looked: 1, Failed: 1}},
		{name: "and tried again next pass", at: t0.Add(4 * time.Minute),
			asked: []string{"flaky@contoso.com"}, want: recommend.MailboxSyncStats{Looked: 1, Saved: 1}},
		{name: "nothing left to ask", at: t0.Add(5 * time.Minute)},
		{name: "missing mailboxes are asked again after a day", at: t0.Add(24*time.Hour + time.Minute),
			asked: []string{"abe@contoso.com", "ada@contoso.com"}, want: recommend.MailboxSyncStats{Looked: 2, NoMailbox: 2}},
		{name: "and every day", at: t0.Add(6 * 24 * time.Hour),
			asked: []string{"abe@contoso.com", "ada@contoso.com"}, want: recommend.MailboxSyncStats{Looked: 2, NoMailbox: 2}},
		{name: "fresh zones are not asked again", at: t0.Add(6*24*time.Hour + time.Minute)},
		{name: "a week on", at: t0.Add(8 * 24 * time.Hour), edit: func() { graph.set("amy@contoso.com", "Europe/Berlin") },
			asked: []string{"abe@contoso.com", "ada@contoso.com"}, want: recommend.MailboxSyncStats{Looked: 2, NoMailbox: 2}},
		{name: "stale zones are refreshed", at: t0.Add(8*24*time.Hour + time.Minute),
			asked: []string{"amy@contoso.com", "bob@contoso.com"}, want: recommend.MailboxSyncStats{Looked: 2, Saved: 2}},
		{name: "the last stale zone", at: t0.Add(8*24*time.Hour + 2*time.Minute),
			asked: []string{"flaky@contoso.com"}, want: recommend.MailboxSyncStats{Looked: 1, Saved: 1}},
		{name: "old mail is not recent", at: t0.Add(40 * 24 * time.Hour)},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			now = s.at
			if s.edit != nil {
				s.edit()
			}
			got, err := sync.Sync(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if asked := graph.takeAsked(); !slices.Equal(asked, s.asked) {
				t.Errorf("asked %q, want %q", asked, s.asked)
			}
			if got != s.want {
				t.Errorf("stats = %+v, want %+v", got, s.want)
			}
		})
	}
	profiles, err := db.Profiles(ctx, []string{"abe@contoso.com", "ada@contoso.com", "amy@contoso.com", "bob@contoso.com",
		"dan@contoso.com", "eve@fabrikam.com", "flaky@contoso.com"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"amy@contoso.com": "Europe/Berlin mailbox", "bob@contoso.com": "America/New_York mailbox",
		"flaky@contoso.com": "Asia/Tokyo mailbox", "dan@contoso.com": "Europe/Berlin profile"}
	if len(profiles) != len(want) {
		t.Errorf("profiles = %v, want %v", profiles, want)
	}
	for addr, w := range want {
		if p := profiles[addr]; p.Location == nil || p.Location.String()+" "+p.Source != w {
			t.Errorf("profile of %s = %+v, want %s", addr, p, w)
		}
	}
}

// TestMailboxSyncGivesUpWhenGraphFails ends a pass after a run of failures rather than asking every
// colleague of a tenant whose Graph or credential is down.
func TestMailboxSyncGivesUpWhenGraphFails(t *testing.T) {
	db := sqlite.OpenTemp(t)
	seedColleagues(t, db)
	graph := &graphZones{zones: map[string]string{}, faults: map[string]int{}}
	for _, a := range []string{"abe@contoso.com", "ada@contoso.com", "amy@contoso.com", "bob@contoso.com", "flaky@contoso.com"} {
		graph.faults[a] = 1
	}
	sync, err := recommend.NewMailboxSync(db, graph, recommend.MailboxSyncOptions{Now: func() time.Time { return t0.Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	st, err := sync.Sync(context.Background())
	if err == nil || !strings.Contains(err.Error(), "in a row") {
		t.Errorf("Sync error = %v, want the pass ended early", err)
	}
	if st != (recommend.MailboxSyncStats{Looked: 5, Failed: 5}) {
		t.Errorf("stats = %+v, want 5 looked, 5 failed", st)
	}
}

// passLog signals each pass Run logs, so the test waits on events rather than time.
type passLog struct{ passes chan slog.Record }

func (h passLog) Enabled(context.Context, slog.Level) bool { return true }
func (h passLog) Handle(_ context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, "mailbox time zones") {
		h.passes <- r
	}
	return nil
}
func (h passLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h passLog) WithGroup(string) slog.Handler      { return h }

func TestMailboxSyncRunPassesAtOnceAndStops(t *testing.T) {
	db := sqlite.OpenTemp(t)
	seedColleagues(t, db)
	graph := &graphZones{zones: map[string]string{"amy@contoso.com": "Europe/Paris"}, faults: map[string]int{}}
	logs := passLog{passes: make(chan slog.Record, 16)}
	sync, err := recommend.NewMailboxSync(db, graph, recommend.MailboxSyncOptions{Domains: []string{"@Contoso.com"}, Every: time.Hour,
		Log: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); sync.Run(ctx) }()
	r := <-logs.passes // the first pass, made at once
	cancel()
	<-done
	saved := -1
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "saved" {
			saved = int(a.Value.Int64())
		}
		return true
	})
	if r.Message != "mailbox time zones" || saved != 1 {
		t.Errorf("first pass logged %q saved=%d, want one zone saved", r.Message, saved)
	}
	if asked := graph.takeAsked(); !slices.Equal(asked, []string{"abe@contoso.com", "ada@contoso.com", "amy@contoso.com", "bob@contoso.com", "flaky@contoso.com"}) {
		t.Errorf("asked %q, want every colleague without a zone once", asked)
	}
	p, err := db.Profiles(context.Background(), []string{"amy@contoso.com"})
	if err != nil || p["amy@contoso.com"].Source != recommend.SourceMailbox || p["amy@contoso.com"].Location.String() != "Europe/Paris" {
		t.Errorf("amy's profile = %+v, %v; want Europe/Paris from her mailbox", p, err)
	}
}

func TestNewMailboxSyncRefuses(t *testing.T) {
	db := sqlite.OpenTemp(t)
	graph := &graphZones{}
	tests := []struct {
		name  string
		store recommend.ColleagueStore
		zones recommend.MailboxZones
		opts  recommend.MailboxSyncOptions
	}{
		{"no store", nil, graph, recommend.MailboxSyncOptions{}},
		{"no mailbox reader", db, nil, recommend.MailboxSyncOptions{}},
		{"an address for a domain", db, graph, recommend.MailboxSyncOptions{Domains: []string{"rep@contoso.com"}}},
		{"an empty domain", db, graph, recommend.MailboxSyncOptions{Domains: []string{" "}}},
		{"a negative interval", db, graph, recommend.MailboxSyncOptions{Every: -time.Minute}},
		{"a negative bound", db, graph, recommend.MailboxSyncOptions{PerTick: -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := recommend.NewMailboxSync(tc.store, tc.zones, tc.opts); !errors.Is(err, recommend.ErrBadInput) {
				t.Errorf("error = %v, want ErrBadInput", err)
			}
		})
	}
}
