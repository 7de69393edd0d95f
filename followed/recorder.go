package followed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// ErrRecorderClosed means the recorder has shut down and takes no more events.
var ErrRecorderClosed = errors.New("followed: recorder closed")

// FirstOpenHandler learns of first opens once their batch is committed (alerts implements it).
type FirstOpenHandler interface {
	FirstOpens(ctx context.Context, opens []FirstOpen)
}

// RecorderOptions tune the group commit.
type RecorderOptions struct {
	MaxBatch    int // events per commit; default 256
	QueueSize   int // events waiting for a commit; default 8192
	OnFirstOpen FirstOpenHandler
	Log         *slog.Logger
}

// Recorder stores tracking events by group commit: each hit waits until the batch holding it is
// committed, and a batch is whatever queued while the previous one was committing, so throughput grows
// with load instead of being capped by a timer window.
type Recorder struct {
	store Store
	opts  RecorderOptions
	queue chan pending

	mu     sync.RWMutex
	closed bool
	done   chan struct{}
}

type pending struct {
	ev   Event
	done chan error
}

// NewRecorder returns a recorder; call Run to start committing.
func NewRecorder(store Store, opts RecorderOptions) *Recorder {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 8192
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	return &Recorder{store: store, opts: opts, queue: make(chan pending, opts.QueueSize), done: make(chan struct{})}
}

// Record queues ev and returns once it is durably stored, or with the error that prevented it.
func (r *Recorder) Record(ctx context.Context, ev Event) error {
	p := pending{ev: ev, done: make(chan error, 1)}
	r.mu.RLock()
	if r.closed {
		r.mu.RUnlock()
		return ErrRecorderClosed
	}
	select {
	case r.queue <- p:
		r.mu.RUnlock()
	case <-ctx.Done():
		r.mu.RUnlock()
		return fmt.Errorf("followed: record %s: %w", ev.ID, ctx.Err())
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("followed: record %s: %w", ev.ID, ctx.Err())
	}
}

// Run commits batches until ctx is done, then refuses new events, commits what is queued and returns.
func (r *Recorder) Run(ctx context.Context) {
	defer close(r.done)
	batch := make([]pending, 0, r.opts.MaxBatch)
	for {
		select {
		case p := <-r.queue:
			batch = r.drain(append(batch[:0], p))
			r.commit(batch)
		case <-ctx.Done():
			r.mu.Lock()
			r.closed = true
			r.mu.Unlock()
			for len(r.queue) > 0 {
				batch = r.drain(batch[:0])
				r.commit(batch)
			}
			return
		}
	}
}

// Wait blocks until Run has flushed and returned.
func (r *Recorder) Wait() { <-r.done }

func (r *Recorder) drain(batch []pending) []pending {
	for len(batch) < r.opts.MaxBatch {
		select {
		case p := <-r.queue:
			batch = append(batch, p)
		default:
			return batch
		}
	}
	return batch
}

func (r *Recorder) commit(batch []pending) {
	if len(batch) == 0 {
		return
	}
	evs := make([]Event, len(batch))
	for i, p := range batch {
		evs[i] = p.ev
	}
	// The commit must not be cut short by a request that gave up: others in the batch still wait.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	firsts, err := r.store.RecordEvents(ctx, evs)
	if err != nil {
		err = fmt.Errorf("followed: commit %d events: %w", len(evs), err)
	}
	for _, p := range batch {
		p.done <- err
	}
	if err == nil && len(firsts) > 0 && r.opts.OnFirstOpen != nil {
		r.opts.OnFirstOpen.FirstOpens(ctx, firsts)
	}
}
