package sqlite_test

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/store/sqlite"
)

// TestLogStartsOverUnderSustainedWrites writes without pause while the checkpointer runs: a checkpoint
// on a reader alone never copies the frames committed while it runs, so the log would only grow. Each
// tick that finds the log past its restart length must make the next commit start it over, which
// bumps the checkpoint sequence in the log's header.
func TestLogStartsOverUnderSustainedWrites(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "engage.db")
	db, err := sqlite.Open(ctx, path, sqlite.Options{IndexEvery: time.Hour, RestartFrames: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	msgs := benchMessagesOf(t, db, 20, "<p>x</p>")
	restarts := func() uint32 {
		t.Helper()
		b, err := os.ReadFile(path + "-wal")
		if err != nil || len(b) < 32 {
			t.Fatalf("read log header: %v (%d bytes)", err, len(b))
		}
		return binary.BigEndian.Uint32(b[12:16])
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writeErr error
	var commits atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			at := time.Now()
			evs := make([]followed.Event, 10)
			for j := range evs {
				evs[j] = followed.Event{ID: followed.NewID(at), MessageID: msgs[(i+j)%len(msgs)], Kind: followed.Opened,
					At: at, Recipient: followed.Shared, Link: -1, Method: "GET"}
			}
			if _, err := db.RecordEvents(ctx, evs); err != nil {
				writeErr = err
				return
			}
			commits.Add(1)
		}
	}()
	// commitsPass waits for n more commits: each writes several pages, so 20 take the log well past 64.
	commitsPass := func(n int64) {
		t.Helper()
		want, deadline := commits.Load()+n, time.Now().Add(20*time.Second)
		for commits.Load() < want {
			if time.Now().After(deadline) {
				t.Fatalf("the writer made %d of %d commits in 20 s", n-(want-commits.Load()), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	before := restarts()
	const ticks = 5
	for range ticks {
		commitsPass(20)
		if err := sqlite.Checkpoint(ctx, db); err != nil {
			t.Fatal(err)
		}
	}
	commitsPass(1) // the commit after the last tick starts the log over
	close(stop)
	wg.Wait()
	if writeErr != nil {
		t.Fatal(writeErr)
	}
	if got := restarts() - before; got < ticks {
		t.Fatalf("the log started over %d times in %d ticks under sustained writes, want at least %d", got, ticks, ticks)
	}
}
