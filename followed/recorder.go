package followed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// ErrRecorderClosed means the recorder has shut down and takes no more events.
var ErrRecorderClosed = errors.New("followed: recorder closed")

// FirstOpenHandler learns of first opens once their batch is committed (alerts implements it).
type FirstOpenHandler interface {
	FirstOpens(ctx context.Context, opens []FirstOpen)
}

// EventStore is the part of Store the recorder writes to.
type EventStore interface {
	RecordEvents(ctx context.Context, evs []Event) ([]FirstOpen, error)
}

// RecorderOptions tune the group commit and the spool.
type RecorderOptions struct {
	MaxBatch  int // events per commit; default 256
	QueueSize int // events waiting for a commit; default 8192
	// Spool, when set, takes every event the store cannot: on an error, a commit slower than
	// CommitTimeout, or a full queue. Without it such events fail with the store's error.
	Spool *Spool
	// CommitTimeout is how long a hit waits on the store before its batch is spooled; default 2s.
	CommitTimeout time.Duration
	// ReplayBatch is how many spooled events go back to the store per commit; default 1000.
	ReplayBatch int
	OnFirstOpen FirstOpenHandler
	Log         *slog.Logger
}

// RecorderStats are the recorder's counts since it started, for operators and the load tool.
type RecorderStats struct {
	Recorded     uint64 // events committed to the store on their first try
	Spooled      uint64 // events written to the spool instead
	Replayed     uint64 // spooled events later committed to the store
	Failed       uint64 // events neither stored nor spooled (reported to their caller)
	Commits      uint64 // successful commits of live batches; Recorded/Commits is the mean batch
	SpoolPending int    // spooled events not yet replayed
	SpoolBytes   int64
	Degraded     bool // the store is failing or slow, so hits go to the spool
	Queued       int  // hits waiting for the next commit: near the queue's size, the spool takes over
}

// Recorder stores tracking events by group commit: each hit waits until the batch holding it is
// committed, and a batch is whatever queued while the previous one was committing, so throughput grows
// with load instead of being capped by a timer window. When the store fails or lags, batches go to the
// spool and the same goroutine replays them, in order, once the store answers again.
type Recorder struct {
	store EventStore
	opts  RecorderOptions
	queue chan pending

	mu     sync.RWMutex
	closed bool
	done   chan struct{}

	// Owned by the Run goroutine.
	jobs     chan<- commitJob    // to the committer, while Run runs
	inflight <-chan commitResult // a commit that outlived CommitTimeout and is still running
	retryAt  time.Time
	backoff  time.Duration
	replayed uint64 // in the current outage, for the log line when the spool drains

	recorded, spooled, replays, failed, commits atomic.Uint64
	degraded                                    atomic.Bool
}

type pending struct {
	ev   Event
	done chan error
}

type commitJob struct {
	evs []Event
	res chan<- commitResult
}

type commitResult struct {
	firsts []FirstOpen
	err    error
}

const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
	// maxYields bounds fill's yielding.
	maxYields = 8
	// replayTick is how often an idle recorder looks for spooled events to replay.
	replayTick = 100 * time.Millisecond
	// commitLimit bounds a commit that has already been given up on, so it cannot hold the store forever.
	commitLimit = 30 * time.Second
)

// NewRecorder returns a recorder; call Run to start committing.
func NewRecorder(store EventStore, opts RecorderOptions) *Recorder {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 8192
	}
	if opts.CommitTimeout <= 0 {
		opts.CommitTimeout = 2 * time.Second
	}
	if opts.ReplayBatch <= 0 {
		opts.ReplayBatch = 1000
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	return &Recorder{store: store, opts: opts, queue: make(chan pending, opts.QueueSize), done: make(chan struct{}),
		backoff: minBackoff}
}

// Record queues ev and returns once it is durably stored or spooled, or with the error that prevented
// both. A full queue never blocks a hit when there is a spool: the event is spooled at once.
func (r *Recorder) Record(ctx context.Context, ev Event) error {
	p := pending{ev: ev, done: make(chan error, 1)}
	r.mu.RLock()
	if r.closed {
		r.mu.RUnlock()
		return r.spoolNow(ctx, ev, ErrRecorderClosed)
	}
	if r.opts.Spool != nil {
		select {
		case r.queue <- p:
			r.mu.RUnlock()
		default:
			r.mu.RUnlock()
			return r.spoolNow(ctx, ev, nil)
		}
	} else {
		select {
		case r.queue <- p:
			r.mu.RUnlock()
		case <-ctx.Done():
			r.mu.RUnlock()
			return fmt.Errorf("followed: record %s: %w", ev.ID, ctx.Err())
		}
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("followed: record %s: %w", ev.ID, ctx.Err())
	}
}

// spoolNow writes one event straight to the spool, or returns why (the spool's error, else noSpool).
func (r *Recorder) spoolNow(ctx context.Context, ev Event, noSpool error) error {
	if r.opts.Spool == nil {
		return noSpool
	}
	if err := r.opts.Spool.Append(ctx, []Event{ev}); err != nil {
		r.failed.Add(1)
		return fmt.Errorf("followed: record %s: %w", ev.ID, err)
	}
	r.spooled.Add(1)
	return nil
}

// Stats returns the counts so far and how much waits in the spool.
func (r *Recorder) Stats() RecorderStats {
	s := RecorderStats{Recorded: r.recorded.Load(), Spooled: r.spooled.Load(), Replayed: r.replays.Load(),
		Failed: r.failed.Load(), Commits: r.commits.Load(), Degraded: r.degraded.Load(), Queued: len(r.queue)}
	if r.opts.Spool != nil {
		s.SpoolPending, s.SpoolBytes = r.opts.Spool.Pending()
	}
	return s
}

// Run commits batches until ctx is done, then refuses new events, commits (or spools) what is queued
// and returns. Spooled events left over are replayed by the next Run, in this process or the next.
func (r *Recorder) Run(ctx context.Context) {
	defer close(r.done)
	jobs := make(chan commitJob)
	r.jobs = jobs
	defer close(jobs)
	go r.committer(jobs)
	if r.opts.Spool != nil {
		if n, size := r.opts.Spool.Pending(); n > 0 {
			r.opts.Log.Info("spool holds events not yet stored; replaying", "events", n, "bytes", size)
		}
	}
	tick := time.NewTicker(replayTick)
	defer tick.Stop()
	batch := make([]pending, 0, r.opts.MaxBatch)
	for {
		select {
		case p := <-r.queue:
			batch = r.fill(r.drain(append(batch[:0], p)))
			r.handle(batch)
			r.replay()
		case <-tick.C:
			r.replay()
		case <-ctx.Done():
			r.mu.Lock()
			r.closed = true
			r.mu.Unlock()
			for len(r.queue) > 0 {
				batch = r.drain(batch[:0])
				r.handle(batch)
			}
			r.finish()
			return
		}
	}
}

// finish waits for a late commit, so that the store is not closed under it, and then replays what it can
// of the spool while the store keeps up, leaving the rest for the next start.
func (r *Recorder) finish() {
	if r.inflight != nil {
		select {
		case res := <-r.inflight:
			r.settle(res)
		case <-time.After(r.opts.CommitTimeout):
			return
		}
	}
	if r.opts.Spool == nil {
		return
	}
	deadline := time.Now().Add(r.opts.CommitTimeout)
	for time.Now().Before(deadline) && r.inflight == nil && !time.Now().Before(r.retryAt) {
		if n, _ := r.opts.Spool.Pending(); n == 0 {
			return
		}
		r.replay()
	}
	if r.inflight != nil {
		select {
		case res := <-r.inflight:
			r.settle(res)
		case <-time.After(r.opts.CommitTimeout):
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

// fill lets the callers answered by the last commit, runnable but maybe not yet run, join the batch:
// it yields while that makes the batch grow. A yield costs nothing when nothing else is runnable, and
// unlike a timer it never holds a batch back from an idle CPU; on a busy one, fewer larger commits
// cost less per event.
func (r *Recorder) fill(batch []pending) []pending {
	for range maxYields {
		if len(batch) >= r.opts.MaxBatch {
			break
		}
		n := len(batch)
		runtime.Gosched()
		if batch = r.drain(batch); len(batch) == n {
			break
		}
	}
	return batch
}

// handle commits a batch, or spools it while the store is failing, lagging or has spooled events to
// catch up on (so that the spool replays in arrival order), and answers every waiter.
func (r *Recorder) handle(batch []pending) {
	if len(batch) == 0 {
		return
	}
	evs := make([]Event, len(batch))
	for i, p := range batch {
		evs[i] = p.ev
	}
	var err error
	if r.opts.Spool == nil || !r.mustSpool() {
		var firsts []FirstOpen
		if firsts, err = r.commit(evs); err == nil {
			r.recorded.Add(uint64(len(evs)))
			r.commits.Add(1)
			r.healthy()
			r.notify(firsts)
			answer(batch, nil)
			return
		}
		err = fmt.Errorf("followed: commit %d events: %w", len(evs), err)
		if r.opts.Spool == nil {
			r.failed.Add(uint64(len(evs)))
			answer(batch, err)
			return
		}
		r.unhealthy(err)
	}
	r.spool(batch, evs, err)
}

// spool appends a batch's events to the spool and answers their waiters; storeErr is why they are not
// in the store, if they tried. An event too large for a record fails alone: the rest of its batch, hits
// that were answered like it, are spooled without it.
func (r *Recorder) spool(batch []pending, evs []Event, storeErr error) {
	serr := r.opts.Spool.Append(context.Background(), evs)
	if errors.Is(serr, errRecordTooLarge) && len(batch) > 1 {
		var fit []pending
		for _, p := range batch {
			if _, err := encodeRecords(nil, []Event{p.ev}); err != nil {
				r.failed.Add(1)
				p.done <- errors.Join(storeErr, err)
				continue
			}
			fit = append(fit, p)
		}
		batch, evs = fit, evs[:0]
		for _, p := range fit {
			evs = append(evs, p.ev)
		}
		serr = r.opts.Spool.Append(context.Background(), evs)
	}
	if serr != nil {
		r.failed.Add(uint64(len(evs)))
		answer(batch, errors.Join(storeErr, serr))
		return
	}
	r.spooled.Add(uint64(len(evs)))
	answer(batch, nil)
}

func answer(batch []pending, err error) {
	for _, p := range batch {
		p.done <- err
	}
}

// mustSpool says whether the next batch goes to the spool rather than the store.
func (r *Recorder) mustSpool() bool {
	r.pollInflight()
	if r.inflight != nil || time.Now().Before(r.retryAt) {
		return true
	}
	n, _ := r.opts.Spool.Pending()
	return n > 0
}

// commit stores evs, giving up after CommitTimeout when there is a spool to fall back on; the commit
// itself goes on (its events are spooled too, and a replay of them is ignored by id).
func (r *Recorder) commit(evs []Event) ([]FirstOpen, error) {
	if r.opts.Spool == nil {
		ctx, cancel := context.WithTimeout(context.Background(), commitLimit)
		defer cancel()
		return r.store.RecordEvents(ctx, evs)
	}
	res := make(chan commitResult, 1)
	r.jobs <- commitJob{evs: evs, res: res}
	timer := time.NewTimer(r.opts.CommitTimeout)
	defer timer.Stop()
	select {
	case out := <-res:
		return out.firsts, out.err
	case <-timer.C:
		r.inflight = res
		return nil, fmt.Errorf("store took longer than %s", r.opts.CommitTimeout)
	}
}

// committer runs the commits that may outlive CommitTimeout, one at a time, since no commit starts
// while one is in flight. It lives as long as Run, rather than a goroutine per commit, because a
// commit needs a deep stack: growing a new one cost about 1 % of the CPU under load.
func (r *Recorder) committer(jobs <-chan commitJob) {
	for job := range jobs {
		ctx, cancel := context.WithTimeout(context.Background(), commitLimit)
		firsts, err := r.store.RecordEvents(ctx, job.evs)
		cancel()
		job.res <- commitResult{firsts, err}
	}
}

// pollInflight settles a late commit if it has finished.
func (r *Recorder) pollInflight() {
	if r.inflight == nil {
		return
	}
	select {
	case res := <-r.inflight:
		r.settle(res)
	default:
	}
}

// settle takes the outcome of a late commit: its first opens are real (the store decided them), and
// its events are in the spool as well, where a replay will skip them.
func (r *Recorder) settle(res commitResult) {
	r.inflight = nil
	if res.err == nil {
		r.notify(res.firsts)
	}
}

func (r *Recorder) notify(firsts []FirstOpen) {
	if len(firsts) == 0 || r.opts.OnFirstOpen == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), commitLimit)
	defer cancel()
	r.opts.OnFirstOpen.FirstOpens(ctx, firsts)
}

func (r *Recorder) unhealthy(err error) {
	if !r.degraded.Swap(true) {
		r.opts.Log.Warn("store unavailable: spooling tracking events", "err", err)
	}
	r.retryAt = time.Now().Add(r.backoff)
	r.backoff = min(2*r.backoff, maxBackoff)
}

func (r *Recorder) healthy() {
	r.backoff = minBackoff
	r.retryAt = time.Time{}
}

// replay moves one batch of spooled events into the store, when there are some and the store is due
// another try; a failure backs off. The spool is consumed only after the commit, so a crash in between
// replays the batch again, which the store ignores by event id.
func (r *Recorder) replay() {
	if r.opts.Spool == nil {
		return
	}
	r.pollInflight()
	if r.inflight != nil || time.Now().Before(r.retryAt) {
		return
	}
	if n, _ := r.opts.Spool.Pending(); n == 0 && !r.degraded.Load() {
		return
	}
	b, err := r.opts.Spool.Read(r.opts.ReplayBatch)
	if err != nil {
		r.unhealthy(err)
		return
	}
	if len(b.Events) > 0 {
		firsts, err := r.commit(b.Events)
		if err != nil {
			r.unhealthy(fmt.Errorf("followed: replay %d spooled events: %w", len(b.Events), err))
			return
		}
		r.healthy()
		r.notify(firsts)
		r.replays.Add(uint64(len(b.Events)))
		r.replayed += uint64(len(b.Events))
	}
	if err := r.opts.Spool.Consume(b); err != nil {
		r.opts.Log.Error("spool not emptied", "err", err)
	}
	if n, _ := r.opts.Spool.Pending(); n == 0 && (r.replayed > 0 || r.degraded.Load()) {
		r.opts.Log.Info("spool replayed into the store", "events", r.replayed)
		r.replayed = 0
		r.degraded.Store(false)
	}
}
