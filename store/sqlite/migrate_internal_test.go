package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/engage-email/engage/followed"
)

// TestUpgradeCarriesCountersAndEvents builds a store as version 15 left it (counters in the messages
// row, events indexed by message on the table), upgrades it, and reads the same message back: its
// counters from their own table, its events through event_index.
func TestUpgradeCarriesCountersAndEvents(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "engage.db")
	old, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	old.SetMaxOpenConns(1)
	if err := (&DB{write: old}).migrateTo(ctx, 15); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO messages (id, owner, subject, html, individual, following, created_at, opens, unique_opens,
			first_opened_at, last_opened_at, clicks, unique_clicks, machine_opens)
			VALUES ('m1', 'rep@contoso.com', 'Offer', '<p>x</p>', 0, 1, 1000, 2, 1, 2000, 3000, 1, 1, 4)`,
		`INSERT INTO events (id, message_id, kind, at, recipient, link, url, ip, user_agent, method, device_type,
			device_os, device_client, machine, reason, rule) VALUES
			('e1', 'm1', 'OPENED', 2000, -1, -1, '', '', '', 'GET', '', '', '', 0, '', ''),
			('e2', 'm1', 'OPENED', 3000, -1, -1, '', '', '', 'GET', '', '', '', 0, '', ''),
			('e3', 'm1', 'LINK_CLICKED', 3500, -1, 0, 'https://example.com/', '', '', 'GET', '', '', '', 0, '', '')`,
	} {
		if _, err := old.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	old.Close()

	db, err := Open(ctx, path, Options{IndexEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	m, err := db.Message(ctx, "m1")
	if err != nil {
		t.Fatal(err)
	}
	want := followed.Counters{Opens: 2, UniqueOpens: 1, FirstOpenedAt: time.UnixMilli(2000).UTC(),
		LastOpenedAt: time.UnixMilli(3000).UTC(), Clicks: 1, UniqueClicks: 1, MachineOpens: 4}
	if m.Counters != want {
		t.Errorf("counters after the upgrade: %+v, want %+v", m.Counters, want)
	}
	evs, err := db.Events(ctx, followed.EventQuery{MessageID: "m1", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range evs {
		ids = append(ids, e.ID)
	}
	if !slices.Equal(ids, []string{"e3", "e2", "e1"}) {
		t.Errorf("events after the upgrade: %v, want e3, e2, e1", ids)
	}
	var indexed, pending int
	if err := db.read.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM event_index),
		(SELECT count(*) FROM events WHERE `+unindexed+`)`).Scan(&indexed, &pending); err != nil {
		t.Fatal(err)
	}
	if indexed != 3 || pending != 0 {
		t.Errorf("after the upgrade %d events indexed and %d waiting, want 3 and 0", indexed, pending)
	}
}
