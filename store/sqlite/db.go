// Package sqlite is Engage's embedded store: one SQLite file (pure Go, WAL) that implements every
// feature's store interface, so Engage runs on a fresh machine with nothing else installed.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options tune durability.
type Options struct {
	// Synchronous is NORMAL (survives a killed process; the default) or FULL (also survives power loss,
	// at an fsync per commit).
	Synchronous string
	// IndexEvery is how often new events are indexed by message (see event_index.go); zero means
	// every 500 ms.
	IndexEvery time.Duration
	// RestartFrames is the write-ahead log's length, in pages, past which the checkpointer makes it
	// start over (see restartFrames); zero means 65,536 (256 MiB).
	RestartFrames int
	// Log takes the background work's failures (checkpoints, indexing), which no caller sees; nil
	// means slog.Default().
	Log *slog.Logger
}

// DB is an open store. Writes go through one connection, because SQLite has one writer and queueing
// in Go is cheaper than spinning on SQLITE_BUSY; reads use a pool.
type DB struct {
	write *sql.DB
	read  *sql.DB
	path  string

	stop    chan struct{}
	running sync.WaitGroup // the checkpointer and the indexer

	stmts map[string]*sql.Stmt // prepared at open on the one write connection; read-only after

	claimed claimed // audience keys known to be stored, so batches need not claim them again

	restartFrames int // the log's length past which checkpoint starts it over
	log           *slog.Logger
}

// checkpointEvery is how often the WAL is copied back into the database file. Doing it here, on a
// reader connection, instead of in whichever commit crosses the WAL size threshold keeps that cost
// (and its fsync) out of the tracking path's commit latency.
const checkpointEvery = time.Second

// restartFrames is the write-ahead log's length (in 4 KiB frames, so 256 MiB) past which the checkpointer
// makes SQLite start the log over. A checkpoint on a reader can only copy the frames committed before it
// began, so under sustained writes it never catches up, and SQLite starts the log over only once it has:
// in the load tool's 40 s of unbroken clicks the log grew to 3 GB, writing into ever new file space made
// every frame dearer (the indexer's cost per event went from 11 to 19 µs), and the ratio fell to 0.40.
// Restarting it at this length, that run kept 0.43 to 0.50 (five runs). Each restart holds the writer
// while it copies and syncs what the rounds on the reader left, which is the run's slowest hit (70 to
// 210 ms); shorter lengths restart more often and cost more (at 64 MiB the run fell to 0.39).
const restartFrames = 1 << 16

// pageBytes is SQLite's default page size, which Engage keeps: a frame of the log holds one page.
const pageBytes = 4096

// catchUpRounds bounds the checkpoints on a reader that shrink what is left before the writer is held,
// and leftFrames is how little is left when they may stop.
const (
	catchUpRounds = 4
	leftFrames    = 512
)

// Open opens (creating if needed) the store at path and applies pending migrations.
func Open(ctx context.Context, path string, opts Options) (*DB, error) {
	syncMode := strings.ToUpper(opts.Synchronous)
	if syncMode == "" {
		syncMode = "NORMAL"
	}
	if syncMode != "NORMAL" && syncMode != "FULL" {
		return nil, fmt.Errorf("sqlite: synchronous must be NORMAL or FULL, not %q", opts.Synchronous)
	}
	indexEvery := opts.IndexEvery
	if indexEvery < 0 {
		return nil, fmt.Errorf("sqlite: index interval %s is negative", indexEvery)
	}
	if indexEvery == 0 {
		indexEvery = defaultIndexEvery
	}
	restart := opts.RestartFrames
	if restart < 0 {
		return nil, fmt.Errorf("sqlite: restart length %d is negative", restart)
	}
	if restart == 0 {
		restart = restartFrames
	}
	dsn := func(txlock string) string {
		q := url.Values{}
		for _, p := range []string{"journal_mode(WAL)", "busy_timeout(10000)", "synchronous(" + syncMode + ")",
			"foreign_keys(1)", "temp_store(MEMORY)", "cache_size(-16000)", "journal_size_limit(" + strconv.Itoa(2*restart*pageBytes) + ")"} {
			q.Add("_pragma", p)
		}
		q.Set("_txlock", txlock)
		return "file:" + filepath.ToSlash(path) + "?" + q.Encode()
	}
	write, err := sql.Open("sqlite", dsn("immediate")+"&_pragma=wal_autocheckpoint(0)")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetConnMaxIdleTime(0)
	read, err := sql.Open("sqlite", dsn("deferred"))
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	read.SetMaxOpenConns(8)
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	db := &DB{write: write, read: read, path: path, stop: make(chan struct{}), restartFrames: restart, log: log}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := db.prepare(ctx); err != nil {
		db.Close()
		return nil, err
	}
	db.running.Add(2)
	go db.every("checkpoint", checkpointEvery, db.checkpoint)
	go db.every("index events", indexEvery, db.indexRoundsUntilCaughtUp)
	return db, nil
}

// OpenTemp opens a fresh store in a test's temporary directory, closed when the test ends.
func OpenTemp(t testing.TB) *DB {
	t.Helper()
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "engage.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Close stops the checkpointer and the indexer and closes the store; closing twice is harmless.
func (db *DB) Close() error {
	select {
	case <-db.stop:
	default:
		close(db.stop)
	}
	db.running.Wait()
	return errors.Join(db.read.Close(), db.write.Close())
}

// prepare readies the hot statements on the one write connection, before any transaction holds it.
func (db *DB) prepare(ctx context.Context) error {
	db.stmts = map[string]*sql.Stmt{}
	for _, q := range hotStatements() {
		st, err := db.write.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("sqlite: prepare: %w", err)
		}
		db.stmts[q] = st
	}
	return nil
}

// stmt binds a statement prepared at open to tx: with one write connection database/sql reuses it
// rather than parsing the text again in every transaction. Any other text is prepared on tx alone.
func (db *DB) stmt(ctx context.Context, tx *sql.Tx, query string) (*sql.Stmt, error) {
	if st, ok := db.stmts[query]; ok {
		return tx.StmtContext(ctx, st), nil
	}
	return tx.PrepareContext(ctx, query)
}

// checkpoint copies the WAL back into the database. PASSIVE never blocks the writer; if readers
// keep it from finishing, the next tick carries on. Once the log is restartFrames long, rounds on a
// reader shrink what is left and a last round holds the write connection, so that no commit lands
// meanwhile and the next one starts the log over. A failure is tried again on the next tick.
func (db *DB) checkpoint(ctx context.Context) error {
	var busy, frames, copied int
	for range catchUpRounds {
		err := db.read.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied)
		if err != nil {
			return fmt.Errorf("sqlite: checkpoint: %w", err)
		}
		if frames < db.restartFrames || frames-copied <= leftFrames {
			break
		}
	}
	if frames < db.restartFrames {
		return nil
	}
	if _, err := db.write.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
		return fmt.Errorf("sqlite: checkpoint on the writer: %w", err)
	}
	return nil
}

// every runs fn every interval, each run bounded to ten seconds, until the store closes.
func (db *DB) every(what string, interval time.Duration, fn func(context.Context) error) {
	defer db.running.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	failing := false // logged once when it starts failing and once when it recovers, not every tick
	for {
		select {
		case <-db.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := fn(ctx)
			cancel()
			switch {
			case err != nil && !failing:
				db.log.Error("sqlite: background work failing; retrying every tick", "work", what, "err", err)
			case err == nil && failing:
				db.log.Info("sqlite: background work recovered", "work", what)
			}
			failing = err != nil
		}
	}
}

// Ping checks that the file can be read, for /readyz.
func (db *DB) Ping(ctx context.Context) error {
	var n int
	if err := db.read.QueryRowContext(ctx, "SELECT count(*) FROM schema_migrations").Scan(&n); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// migrate applies the embedded migrations not yet recorded, each in its own immediate transaction so
// that two processes starting on one file do not apply one twice.
func (db *DB) migrate(ctx context.Context) error {
	return db.migrateTo(ctx, math.MaxInt)
}

// migrateTo applies the migrations up to version upto; tests use it to build an older store.
func (db *DB) migrateTo(ctx context.Context, upto int) error {
	if _, err := db.write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT`); err != nil {
		return fmt.Errorf("sqlite: create schema_migrations: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("sqlite: list migrations: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		base := filepath.Base(name)
		v, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("sqlite: migration %s has no version prefix", base)
		}
		if v > upto {
			break
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return fmt.Errorf("sqlite: read migration %s: %w", base, err)
		}
		if err := db.apply(ctx, v, base, string(body)); err != nil {
			return err
		}
	}
	return nil
}

func (db *DB) apply(ctx context.Context, version int, name, body string) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: migration %s: %w", name, err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM schema_migrations WHERE version = ?", version).Scan(&n); err != nil {
		return fmt.Errorf("sqlite: migration %s: %w", name, err)
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, body); err != nil {
		return fmt.Errorf("sqlite: apply migration %s: %w", name, err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
		version, name, time.Now().UnixMilli()); err != nil {
		return fmt.Errorf("sqlite: record migration %s: %w", name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit migration %s: %w", name, err)
	}
	return nil
}

func millis(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

func fromMillis(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64).UTC()
}
