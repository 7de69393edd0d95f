package followed_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/store/sqlite"
)

// firstOpens collects what the recorder announces, as alerts would.
type firstOpens struct {
	mu    sync.Mutex
	opens []followed.FirstOpen
}

func (f *firstOpens) FirstOpens(_ context.Context, opens []followed.FirstOpen) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opens = append(f.opens, opens...)
}

func (f *firstOpens) count() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int{}
	for _, o := range f.opens {
		out[o.MessageID]++
	}
	return out
}

// ingest is a real store on a file, so that tests can lock it from a second connection, close it and
// open it again, as an outage or a restart would.
type ingest struct {
	dir  string
	db   *sqlite.DB
	msgs []string
}

func newIngest(t *testing.T, messages int) *ingest {
	t.Helper()
	in := &ingest{dir: t.TempDir()}
	in.open(t)
	now := time.Now()
	for i := range messages {
		id := fmt.Sprintf("m%03d", i)
		m := followed.Message{ID: id, Owner: "rep@contoso.com", Subject: "S " + id, HTML: "<p>x</p>", Following: true,
			CreatedAt: now, Warnings: []string{},
			Recipients: []followed.Recipient{{Email: "a@x.com", Kind: followed.KindTo}},
			Renders:    []followed.Render{{Index: 0, Recipient: followed.Shared, Targets: []int{0}, HTML: "r", Tracked: true}},
			Links:      []followed.Link{{Index: 0, URL: "https://example.com/a"}}}
		if err := in.db.CreateMessage(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		in.msgs = append(in.msgs, id)
	}
	return in
}

func (in *ingest) open(t *testing.T) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(in.dir, "engage.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	in.db = db
}

func (in *ingest) spool(t *testing.T, log *slog.Logger) *followed.Spool {
	t.Helper()
	s, err := followed.OpenSpool(filepath.Join(in.dir, "spool.log"), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// lock holds the database's write lock from another connection, as a long migration or a stuck
// process would, until the returned function is called.
func (in *ingest) lock(t *testing.T) func() {
	t.Helper()
	other, err := sql.Open("sqlite", "file:"+filepath.ToSlash(filepath.Join(in.dir, "engage.db"))+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := other.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release := func() {
		once.Do(func() {
			if _, err := conn.ExecContext(context.Background(), "COMMIT"); err != nil {
				t.Error(err)
			}
			conn.Close()
			other.Close()
		})
	}
	t.Cleanup(release)
	return release
}

func (in *ingest) event(i int, kind followed.EventKind) followed.Event {
	ev := followed.Event{ID: followed.NewID(time.Now()), MessageID: in.msgs[i%len(in.msgs)], Kind: kind, At: time.Now().UTC(),
		Recipient: followed.Shared, Link: -1, IP: "192.0.2.1", UserAgent: "ua", Method: "GET",
		Device: followed.Device{Type: followed.DeviceDesktop, OS: "Windows", Client: "Outlook"}}
	if kind == followed.LinkClicked {
		ev.Link, ev.URL = 0, "https://example.com/a"
	}
	return ev
}

// stored returns how many events the store holds per message and checks the counters agree with them.
func (in *ingest) stored(t *testing.T) int {
	t.Helper()
	total := 0
	for _, id := range in.msgs {
		m, err := in.db.Message(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		evs, err := in.db.Events(context.Background(), followed.EventQuery{MessageID: id, Limit: 100000})
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Counters.Opens + m.Counters.Clicks; got != len(evs) {
			t.Fatalf("%s: counters say %d opens and clicks, %d events stored", id, got, len(evs))
		}
		if len(evs) > 0 && (m.Counters.UniqueOpens > 1 || m.Counters.UniqueClicks > 1) {
			t.Fatalf("%s: unique counts %+v on a shared render", id, m.Counters)
		}
		total += len(evs)
	}
	return total
}

// hit records n events from concurrent callers, each failing the test if Record does.
func hit(t *testing.T, rec *followed.Recorder, in *ingest, n, from int) {
	t.Helper()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			kind := followed.Opened
			if i%3 == 0 {
				kind = followed.LinkClicked
			}
			if err := rec.Record(context.Background(), in.event(from+i, kind)); err != nil {
				t.Errorf("record %d: %v", from+i, err)
			}
		}()
	}
	wg.Wait()
}

// eventually polls cond until it holds or a generous deadline passes; the deadline only bounds a
// failing test, it asserts nothing about speed.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func run(rec *followed.Recorder) func() {
	ctx, cancel := context.WithCancel(context.Background())
	go rec.Run(ctx)
	return func() { cancel(); rec.Wait() }
}

func TestRecorderGroupCommit(t *testing.T) {
	in := newIngest(t, 10)
	fo := &firstOpens{}
	rec := followed.NewRecorder(in.db, followed.RecorderOptions{Spool: in.spool(t, nil), OnFirstOpen: fo})
	stop := run(rec)
	hit(t, rec, in, 600, 0)
	stop()
	if got := in.stored(t); got != 600 {
		t.Fatalf("stored %d events, want 600", got)
	}
	st := rec.Stats()
	if st.Recorded != 600 || st.Spooled != 0 || st.Failed != 0 || st.Degraded {
		t.Fatalf("stats %+v", st)
	}
	for _, id := range in.msgs {
		if fo.count()[id] != 1 {
			t.Fatalf("first opens %v, want one per message", fo.count())
		}
	}
}

func TestRecorderSpoolsThroughOutageAndReplays(t *testing.T) {
	tests := []struct {
		name  string
		queue int // recorder queue; 1 forces the full-queue path
		wait  time.Duration
	}{
		{"slow store", 8192, 50 * time.Millisecond},
		{"full queue", 1, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := newIngest(t, 10)
			fo := &firstOpens{}
			var logs syncBuffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			rec := followed.NewRecorder(in.db, followed.RecorderOptions{Spool: in.spool(t, log), OnFirstOpen: fo,
				CommitTimeout: tt.wait, QueueSize: tt.queue, MaxBatch: 64, ReplayBatch: 100, Log: log})
			stop := run(rec)
			defer stop()
			hit(t, rec, in, 100, 0) // healthy

			release := in.lock(t)
			done := make(chan struct{})
			go func() { defer close(done); hit(t, rec, in, 400, 100) }() // every Record returns nil
			eventually(t, "hits spooled during the outage", func() bool { return rec.Stats().Spooled >= 300 })
			if st := rec.Stats(); st.SpoolPending == 0 || !st.Degraded && tt.queue > 1 {
				t.Fatalf("stats during the outage %+v", st)
			}
			release()
			<-done
			eventually(t, "spool replayed", func() bool { s := rec.Stats(); return s.SpoolPending == 0 && !s.Degraded })
			hit(t, rec, in, 100, 500) // healthy again (a slow commit may still spool a few)
			eventually(t, "spool replayed", func() bool { return rec.Stats().SpoolPending == 0 })
			stop()

			if got := in.stored(t); got != 600 {
				t.Fatalf("stored %d events, want 600", got)
			}
			for _, id := range in.msgs {
				if fo.count()[id] != 1 {
					t.Fatalf("first opens %v, want exactly one per message", fo.count())
				}
			}
			st := rec.Stats()
			if st.Failed != 0 || st.Recorded+st.Spooled != 600 || st.Replayed < st.Spooled {
				t.Fatalf("stats %+v", st)
			}
			if !strings.Contains(logs.String(), "spool replayed into the store") {
				t.Fatalf("no replay log line:\n%s", logs.String())
			}
		})
	}
}

func TestRecorderReplaysWhatAnEarlierRunSpooled(t *testing.T) {
	in := newIngest(t, 5)
	// The first run's store is gone (closed), so every hit is spooled and still acknowledged.
	in.db.Close()
	spool := in.spool(t, nil)
	rec := followed.NewRecorder(in.db, followed.RecorderOptions{Spool: spool, Log: slog.New(slog.DiscardHandler)})
	stop := run(rec)
	hit(t, rec, in, 300, 0)
	stop()
	if st := rec.Stats(); st.Spooled != 300 || st.SpoolPending != 300 || st.Recorded != 0 {
		t.Fatalf("stats after the failed run %+v", st)
	}
	// A hit after shutdown still lands in the spool.
	if err := rec.Record(context.Background(), in.event(300, followed.Opened)); err != nil {
		t.Fatal(err)
	}
	spool.Close()

	in.open(t)
	fo := &firstOpens{}
	var logs syncBuffer
	rec = followed.NewRecorder(in.db, followed.RecorderOptions{Spool: in.spool(t, nil), OnFirstOpen: fo,
		Log: slog.New(slog.NewTextHandler(&logs, nil))})
	stop = run(rec)
	eventually(t, "spool replayed", func() bool { return rec.Stats().SpoolPending == 0 })
	stop()
	if got := in.stored(t); got != 301 {
		t.Fatalf("stored %d events after replay, want 301", got)
	}
	if c := fo.count(); len(c) != len(in.msgs) {
		t.Fatalf("first opens after replay %v, want one per message", c)
	}
	if st := rec.Stats(); st.Replayed != 301 {
		t.Fatalf("replayed %d, want 301", st.Replayed)
	}
}

// TestRecorderSpoolsABatchWithoutItsOversizedEvent queues, while the store is down, one event too large
// for a spool record (a click on a link of megabytes) among ordinary hits, in one batch: it alone fails,
// and the others are spooled and then stored.
func TestRecorderSpoolsABatchWithoutItsOversizedEvent(t *testing.T) {
	in := newIngest(t, 3)
	rec := followed.NewRecorder(in.db, followed.RecorderOptions{Spool: in.spool(t, nil), CommitTimeout: 200 * time.Millisecond,
		MaxBatch: 64})
	release := in.lock(t)

	// Queued before the recorder runs, the hits make its first batch together.
	big := in.event(0, followed.LinkClicked)
	big.URL = "https://example.com/?q=" + strings.Repeat("<", followed.SpoolMaxRecord/4)
	errs := make(chan error, 21)
	go func() { errs <- rec.Record(context.Background(), big) }()
	for i := range 20 {
		go func() { errs <- rec.Record(context.Background(), in.event(1+i, followed.Opened)) }()
	}
	eventually(t, "every hit queued", func() bool { return rec.Stats().Queued == 21 })
	stop := run(rec)
	defer stop()
	var failed []error
	for range 21 {
		if err := <-errs; err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) != 1 || !strings.Contains(failed[0].Error(), big.ID) {
		t.Fatalf("%d hits failed (%v), want the oversized one alone", len(failed), failed)
	}
	release()
	eventually(t, "spool replayed", func() bool { return rec.Stats().SpoolPending == 0 })
	stop()
	if got := in.stored(t); got != 20 {
		t.Fatalf("stored %d events, want 20", got)
	}
	if st := rec.Stats(); st.Failed != 1 || st.Spooled != 20 {
		t.Fatalf("stats %+v, want 20 spooled and 1 failed", st)
	}
}

func TestRecorderWithoutSpoolReportsStoreErrors(t *testing.T) {
	in := newIngest(t, 1)
	in.db.Close()
	rec := followed.NewRecorder(in.db, followed.RecorderOptions{})
	stop := run(rec)
	defer stop()
	err := rec.Record(context.Background(), in.event(0, followed.Opened))
	if err == nil || !strings.Contains(err.Error(), "commit 1 events") {
		t.Fatalf("Record on a closed store without a spool: %v", err)
	}
	stop()
	if err := rec.Record(context.Background(), in.event(1, followed.Opened)); err != followed.ErrRecorderClosed {
		t.Fatalf("Record after shutdown: %v, want ErrRecorderClosed", err)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// BenchmarkRecorder measures hits recorded per second by concurrent callers (64 per core, like a
// loaded tracking endpoint), each waiting for its group commit into SQLite.
func BenchmarkRecorder(b *testing.B) {
	in := &ingest{dir: b.TempDir()}
	db, err := sqlite.Open(context.Background(), filepath.Join(in.dir, "engage.db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	in.db = db
	for i := range 50 {
		id := fmt.Sprintf("m%03d", i)
		m := followed.Message{ID: id, Owner: "rep@contoso.com", Subject: "S", HTML: "<p>x</p>", Following: true,
			CreatedAt: time.Now(), Warnings: []string{},
			Recipients: []followed.Recipient{{Email: "a@x.com", Kind: followed.KindTo}},
			Renders:    []followed.Render{{Index: 0, Recipient: followed.Shared, Targets: []int{0}, HTML: "r", Tracked: true}}}
		if err := db.CreateMessage(context.Background(), m); err != nil {
			b.Fatal(err)
		}
		in.msgs = append(in.msgs, id)
	}
	spool, err := followed.OpenSpool(filepath.Join(in.dir, "spool.log"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer spool.Close()
	rec := followed.NewRecorder(db, followed.RecorderOptions{Spool: spool})
	stop := run(rec)
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if err := rec.Record(context.Background(), in.event(i, followed.Opened)); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
	b.StopTimer()
	stop()
	st := rec.Stats()
	b.ReportMetric(float64(st.Recorded+st.Spooled)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(st.Spooled), "spooled")
	b.ReportMetric(float64(st.Recorded)/float64(max(1, st.Commits)), "events/commit")
}
