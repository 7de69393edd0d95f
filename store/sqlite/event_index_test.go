package sqlite_test

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/store"
	"github.com/engage-email/engage/store/sqlite"
)

// TestEventsAcrossTheIndexedEnd pages through a message's events when some are indexed and the newest
// are not, with several at one millisecond, and checks the pages against the events in order.
func TestEventsAcrossTheIndexedEnd(t *testing.T) {
	ctx := context.Background()
	db := openIdle(t)
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	for _, id := range []string{"m1", "m2"} {
		if err := db.CreateMessage(ctx, followed.Message{ID: id, Owner: "rep@contoso.com", Subject: "S", HTML: "<p>x</p>",
			Following: true, CreatedAt: t0, Warnings: []string{}, Recipients: []followed.Recipient{{Email: "a@x.com", Kind: followed.KindTo}},
			Renders: []followed.Render{{Index: 0, Recipient: followed.Shared, Targets: []int{0}, HTML: "r", Tracked: true}}}); err != nil {
			t.Fatal(err)
		}
	}
	var want []string
	record := func(from, to int) {
		t.Helper()
		var evs []followed.Event
		for i := from; i < to; i++ {
			at := t0.Add(time.Duration(i/3) * time.Second) // three events a second: ties broken by id
			id := fmt.Sprintf("e%03d", i)
			evs = append(evs, followed.Event{ID: id, MessageID: "m1", Kind: followed.Opened, At: at, Recipient: followed.Shared, Link: -1},
				followed.Event{ID: "other" + id, MessageID: "m2", Kind: followed.Opened, At: at, Recipient: followed.Shared, Link: -1})
			want = append(want, id)
		}
		if _, err := db.RecordEvents(ctx, evs); err != nil {
			t.Fatal(err)
		}
	}
	record(0, 10)
	if err := sqlite.IndexEvents(ctx, db); err != nil {
		t.Fatal(err)
	}
	record(10, 17)
	if n, err := sqlite.UnindexedEvents(ctx, db); err != nil || n != 14 {
		t.Fatalf("unindexed events: %d, %v; want the 14 recorded after indexing", n, err)
	}
	slices.Reverse(want) // newest first
	for _, limit := range []int{1, 2, 3, 4, 7, 100} {
		t.Run(fmt.Sprintf("limit=%d", limit), func(t *testing.T) {
			var got []string
			q := followed.EventQuery{MessageID: "m1", Limit: limit}
			for range 40 {
				page, err := db.Events(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) > limit {
					t.Fatalf("page of %d, limit %d", len(page), limit)
				}
				for _, e := range page {
					got = append(got, e.ID)
				}
				if len(page) < limit {
					break
				}
				last := page[len(page)-1]
				q.After = &followed.Cursor{At: last.At, ID: last.ID}
			}
			if !slices.Equal(got, want) {
				t.Errorf("pages gave\n%v\nwant\n%v", got, want)
			}
		})
	}
}

// TestIndexerCatchesUpAndDeletesFollow runs the background indexer on a short interval over more
// events than one step holds, then erases a recipient and checks the entries went with the events.
func TestIndexerCatchesUpAndDeletesFollow(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "engage.db"), sqlite.Options{IndexEvery: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	if err := db.CreateMessage(ctx, followed.Message{ID: "m1", Owner: "rep@contoso.com", Subject: "S", HTML: "<p>x</p>",
		Following: true, Individual: true, CreatedAt: t0, Warnings: []string{},
		Recipients: []followed.Recipient{{Email: "ann@x.com", Kind: followed.KindTo}, {Email: "bob@x.com", Kind: followed.KindTo}},
		Renders: []followed.Render{{Index: 0, Recipient: 0, Targets: []int{0}, HTML: "r", Tracked: true},
			{Index: 1, Recipient: 1, Targets: []int{1}, HTML: "r", Tracked: true}}}); err != nil {
		t.Fatal(err)
	}
	const n = 9000 // more than two steps
	evs := make([]followed.Event, 0, n)
	for i := range n {
		evs = append(evs, followed.Event{ID: fmt.Sprintf("e%05d", i), MessageID: "m1", Kind: followed.Opened,
			At: t0.Add(time.Duration(i) * time.Millisecond), Recipient: i % 2, Link: -1})
	}
	if _, err := db.RecordEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		left, err := sqlite.UnindexedEvents(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events still unindexed", left)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := db.FollowedEraser().ForgetRecipient(ctx, "ann@x.com"); err != nil {
		t.Fatal(err)
	}
	if got, err := sqlite.IndexEntries(ctx, db); err != nil || got != n/2 {
		t.Fatalf("index entries after erasing Ann: %d, %v; want Bob's %d", got, err, n/2)
	}
	page, err := db.Events(ctx, followed.EventQuery{MessageID: "m1", Limit: n})
	if err != nil || len(page) != n/2 {
		t.Fatalf("events after erasing Ann: %d, %v; want %d", len(page), err, n/2)
	}
	for _, e := range page {
		if e.Recipient != 1 {
			t.Fatalf("Ann's event %s is still listed", e.ID)
		}
	}
}

// TestRelabelReachesTheIndex relabels one indexed open and one not indexed yet, and checks that the
// index entries, which the per-message aggregates read alone, say machine for both once indexed.
func TestRelabelReachesTheIndex(t *testing.T) {
	ctx := context.Background()
	db := openIdle(t)
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	if err := db.CreateMessage(ctx, followed.Message{ID: "m1", Owner: "rep@contoso.com", Subject: "S", HTML: "<p>x</p>",
		Following: true, CreatedAt: t0, Warnings: []string{}, Recipients: []followed.Recipient{{Email: "a@x.com", Kind: followed.KindTo}},
		Renders: []followed.Render{{Index: 0, Recipient: followed.Shared, Targets: []int{0}, HTML: "r", Tracked: true}}}); err != nil {
		t.Fatal(err)
	}
	open := func(id string, at time.Time) {
		t.Helper()
		if _, err := db.RecordEvents(ctx, []followed.Event{{ID: id, MessageID: "m1", Kind: followed.Opened, At: at,
			Recipient: followed.Shared, Link: -1}}); err != nil {
			t.Fatal(err)
		}
	}
	open("e1", t0.Add(time.Minute))
	open("e2", t0.Add(2*time.Minute))
	if err := sqlite.IndexEvents(ctx, db); err != nil {
		t.Fatal(err)
	}
	open("e3", t0.Add(3*time.Minute))
	if err := db.Relabel(ctx, []followed.Relabel{{EventID: "e1", Reason: "PREFETCH", Rule: "test"},
		{EventID: "e3", Reason: "PREFETCH", Rule: "test"}}); err != nil {
		t.Fatal(err)
	}
	if err := sqlite.IndexEvents(ctx, db); err != nil {
		t.Fatal(err)
	}
	got, err := sqlite.IndexedMachine(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"e1": true, "e2": false, "e3": true}
	if !maps.Equal(got, want) {
		t.Errorf("machine in event_index: %v, want %v", got, want)
	}
}

// TestIndexerFailureIsLoggedOnce breaks the indexer for many ticks and checks that the failure is
// logged once, not every tick, and that its recovery is logged too.
func TestIndexerFailureIsLoggedOnce(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	logFile, err := os.Create(filepath.Join(dir, "log")) // the file, not a buffer, takes the indexer's writes while the test reads
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	logs := func() string {
		b, err := os.ReadFile(logFile.Name())
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	db, err := sqlite.Open(ctx, filepath.Join(dir, "engage.db"), sqlite.Options{IndexEvery: time.Millisecond,
		Log: slog.New(slog.NewTextHandler(logFile, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := sqlite.Exec(ctx, db, "ALTER TABLE event_index_state RENAME TO broken"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // about 50 ticks
	if err := sqlite.Exec(ctx, db, "ALTER TABLE broken RENAME TO event_index_state"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs(), "recovered") {
		if time.Now().After(deadline) {
			t.Fatalf("no recovery logged; the log:\n%s", logs())
		}
		time.Sleep(time.Millisecond)
	}
	if n := strings.Count(logs(), "level=ERROR"); n != 1 {
		t.Errorf("%d error lines over about 50 failing ticks, want 1; the log:\n%s", n, logs())
	}
	if !strings.Contains(logs(), "no such table: event_index_state") || !strings.Contains(logs(), `work="index events"`) {
		t.Errorf("the error line does not say what failed; the log:\n%s", logs())
	}
}

// TestImportedEventsAboveTheEndCountOnce copies a message's events into a store whose indexer has not
// run: import writes each event's entry whatever its seq, so until a round passes them the events are
// both in event_index and at the unindexed end of the table, and reads must list them once.
func TestImportedEventsAboveTheEndCountOnce(t *testing.T) {
	ctx := context.Background()
	src, dst := openIdle(t), openIdle(t)
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	if err := src.CreateMessage(ctx, followed.Message{ID: "m1", Owner: "rep@contoso.com", Subject: "S", HTML: "<p>x</p>",
		Following: true, CreatedAt: t0, Warnings: []string{}, Recipients: []followed.Recipient{{Email: "a@x.com", Kind: followed.KindTo}},
		Renders: []followed.Render{{Index: 0, Recipient: followed.Shared, Targets: []int{0}, HTML: "r", Tracked: true}}}); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 3 {
		id := fmt.Sprintf("e%d", i)
		want = append([]string{id}, want...) // newest first
		if _, err := src.RecordEvents(ctx, []followed.Event{{ID: id, MessageID: "m1", Kind: followed.Opened,
			At: t0.Add(time.Duration(i) * time.Minute), Recipient: followed.Shared, Link: -1}}); err != nil {
			t.Fatal(err)
		}
	}
	tables, err := src.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		var rows []store.Row
		if err := src.Export(ctx, tb, func(r store.Row) error { rows = append(rows, r); return nil }); err != nil {
			t.Fatal(err)
		}
		if err := dst.Import(ctx, tb, rows); err != nil {
			t.Fatalf("import %s: %v", tb, err)
		}
	}
	if left, err := sqlite.UnindexedEvents(ctx, dst); err != nil || left != len(want) {
		t.Fatalf("unindexed events after the copy: %d, %v; want all %d above the end", left, err, len(want))
	}
	if got, err := sqlite.IndexEntries(ctx, dst); err != nil || got != len(want) {
		t.Fatalf("index entries after the copy: %d, %v; want the %d import wrote", got, err, len(want))
	}
	page, err := dst.Events(ctx, followed.EventQuery{MessageID: "m1", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range page {
		got = append(got, e.ID)
	}
	if !slices.Equal(got, want) {
		t.Errorf("events after the copy: %v; want %v, each once", got, want)
	}
}
