package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/store/sqlite"
)

// TestClaimAfterAnotherProcessFreedIt has one process remember that a recipient's open is claimed,
// another relabel that open a machine's (which frees the claim), and checks that the first process
// announces the person's next open as the first, as it would with nothing remembered.
func TestClaimAfterAnotherProcessFreedIt(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "engage.db")
	open := func() *sqlite.DB {
		db, err := sqlite.Open(ctx, path, sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	a, b := open(), open()
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	if err := a.CreateMessage(ctx, followed.Message{ID: "m1", Owner: "rep@contoso.com", Subject: "S", HTML: "<p>x</p>",
		Following: true, CreatedAt: t0, Warnings: []string{}, Recipients: []followed.Recipient{{Email: "a@x.com", Kind: followed.KindTo}},
		Renders: []followed.Render{{Index: 0, Recipient: followed.Shared, Targets: []int{0}, HTML: "r", Tracked: true}}}); err != nil {
		t.Fatal(err)
	}
	record := func(db *sqlite.DB, id string, at time.Time) []followed.FirstOpen {
		t.Helper()
		firsts, err := db.RecordEvents(ctx, []followed.Event{{ID: id, MessageID: "m1", Kind: followed.Opened, At: at,
			Recipient: followed.Shared, Link: -1}})
		if err != nil {
			t.Fatal(err)
		}
		return firsts
	}
	if got := record(a, "e1", t0.Add(time.Minute)); len(got) != 1 {
		t.Fatalf("first open: %d announced, want 1", len(got))
	}
	if got := record(a, "e2", t0.Add(2*time.Minute)); len(got) != 0 {
		t.Fatalf("second open: %d announced, want 0", len(got))
	}
	// Both opens were a scanner's: the claim is freed, by the other process.
	if err := b.Relabel(ctx, []followed.Relabel{{EventID: "e1", Reason: "SECURITY_SCANNER", Rule: "test"},
		{EventID: "e2", Reason: "SECURITY_SCANNER", Rule: "test"}}); err != nil {
		t.Fatal(err)
	}
	if got := record(a, "e3", t0.Add(3*time.Minute)); len(got) != 1 {
		t.Fatalf("the person's open after the relabel: %d announced, want 1", len(got))
	}
	m, err := a.Message(ctx, "m1")
	if err != nil {
		t.Fatal(err)
	}
	if m.Counters.UniqueOpens != 1 || m.Counters.Opens != 1 || m.Counters.MachineOpens != 2 {
		t.Errorf("counters %+v, want 1 open (unique 1) and 2 machine opens", m.Counters)
	}
	if got := record(a, "e4", t0.Add(4*time.Minute)); len(got) != 0 {
		t.Fatalf("an open after that: %d announced, want 0", len(got))
	}
}
