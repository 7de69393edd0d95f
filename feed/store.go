package feed

import (
	"context"
	"errors"
	"time"
)

// ErrTaken means an endpoint cannot be claimed now: it is disabled, not due, or another instance
// holds its lease; the step is simply not taken.
var ErrTaken = errors.New("feed: endpoint not due or leased to another instance")

// ErrLeaseLost means another instance took over an endpoint whose lease ran out, so this one must not
// save what its step did.
var ErrLeaseLost = errors.New("feed: endpoint lease lost")

// Store is what feed needs from a backend. Every method is atomic.
type Store interface {
	// Responses reads the records after q.After in log order, as one consistent snapshot.
	Responses(ctx context.Context, q Query) (Page, error)
	// NewestSeq is the newest log position, 0 when the log is empty: where a new endpoint starts.
	NewestSeq(ctx context.Context) (int64, error)

	// CreateEndpoint stores a new endpoint with its configuration and starting state.
	CreateEndpoint(ctx context.Context, ep Endpoint) error
	// Endpoint returns one endpoint, or followed.ErrNotFound.
	Endpoint(ctx context.Context, id string) (Endpoint, error)
	// Endpoints lists every endpoint, oldest first.
	Endpoints(ctx context.Context) ([]Endpoint, error)
	// UpdateEndpoint replaces an endpoint's configuration (URL, secret, categories, interval, updater),
	// leaving its delivery state alone but for the next attempt, which comes no later than UpdatedAt
	// plus the new interval (a shorter interval takes effect at once), unless reset, which re-enables
	// it with a clean failure record; followed.ErrNotFound when absent.
	UpdateEndpoint(ctx context.Context, ep Endpoint, reset bool) error
	// DeleteEndpoint removes an endpoint and its delivery log; followed.ErrNotFound when absent.
	DeleteEndpoint(ctx context.Context, id string) error
	// ClaimEndpoint leases the endpoint to instance until until, for one step, when it is enabled, due
	// (NextAt <= now) and not leased to another instance past now, and returns it as stored, lease
	// included; ErrTaken when it is not claimable, followed.ErrNotFound when absent. Two claimers never
	// both get an endpoint while its lease runs, so instances sharing a store never form two batches.
	ClaimEndpoint(ctx context.Context, id, instance string, now, until time.Time) (Endpoint, error)
	// FixBatch stores an endpoint's delivery state with a newly formed batch while instance holds its
	// lease, keeping the lease, so the batch is fixed before it is sent; ErrLeaseLost when instance no
	// longer holds it and followed.ErrNotFound when it was deleted (nothing is written either way).
	FixBatch(ctx context.Context, id, instance string, st State) error
	// SaveState stores an endpoint's delivery state and, when given, a delivery log row, together,
	// while instance holds its lease, and releases the lease; ErrLeaseLost when instance no longer
	// holds it and followed.ErrNotFound when it was deleted meanwhile (nothing is written either way).
	SaveState(ctx context.Context, id, instance string, st State, d *Delivery) error
	// Deliveries lists an endpoint's delivery log, newest first, at most limit rows.
	Deliveries(ctx context.Context, endpointID string, limit int) ([]Delivery, error)
	// PruneDeliveries deletes delivery log rows older than before, at most limit, and says how many.
	PruneDeliveries(ctx context.Context, before time.Time, limit int) (int, error)
}

// Endpoint is a webhook an admin registered: where batches go and what they hold.
type Endpoint struct {
	ID         string
	URL        string
	Secret     string // signs every delivery; kept because signing needs it, never shown again
	Categories []Category
	Interval   time.Duration // at most one batch per interval, unless a backlog is draining
	CreatedBy  string
	CreatedAt  time.Time
	UpdatedBy  string
	UpdatedAt  time.Time
	State      State
	LeaseOwner string    // the instance stepping it, "" when none
	LeaseUntil time.Time // when that instance's claim runs out; zero when none
}

// Enabled reports whether the endpoint still receives deliveries.
func (e Endpoint) Enabled() bool { return e.State.DisabledAt.IsZero() }

// State is where an endpoint's deliveries stand; it survives restarts, so a batch in retry is sent
// again, with the same idempotency key, by whichever process runs next.
type State struct {
	Cursor         int64     // every record up to here is delivered (or filtered out)
	Batch          *Batch    // the batch being delivered, nil between batches
	NextAt         time.Time // when the next attempt or batch is due
	FailingSince   time.Time // first failure of the current run of failures; zero when healthy
	DisabledAt     time.Time // zero while enabled
	DisabledReason string
}

// Batch is a run of records sent as one request, fixed when first formed: a retry carries the same
// records (as far as they still exist) under the same idempotency key.
type Batch struct {
	Key        string
	First      int64 // position of its first record
	Last       int64 // position of its last record
	Through    int64 // the cursor once it is delivered: Last, or past filtered positions that followed
	Categories []Category
	Attempts   int
	FormedAt   time.Time
}

// Outcome is what a delivery attempt came to.
type Outcome string

// The outcomes in the delivery log.
const (
	Delivered Outcome = "DELIVERED" // the receiver answered 2xx
	Failed    Outcome = "FAILED"    // it will be retried
	Disabled  Outcome = "DISABLED"  // failing for too long: the endpoint was switched off
)

// Delivery is one attempt in the delivery log.
type Delivery struct {
	ID         string
	EndpointID string
	Key        string // the idempotency key of the batch
	Attempt    int
	At         time.Time
	Outcome    Outcome
	StatusCode int // 0 when no HTTP answer came
	Error      string
	Duration   time.Duration
	Records    int
	First      int64
	Last       int64
}
