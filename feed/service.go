package feed

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/engage-email/engage/auth"
	"github.com/engage-email/engage/followed"
)

// Limits on what callers may ask for.
const (
	DefaultPage    = 100            // records per page when the caller does not say
	MaxPage        = 500            // records per page or delivery at most, so one answer stays small
	MinSecret      = 32             // bytes: an HMAC key shorter than its 256-bit output is the weak link
	MaxSecret      = 512            // bytes: longer adds nothing but storage
	MinInterval    = time.Second    // a batch per second at most per endpoint
	MaxInterval    = 24 * time.Hour // the CRM reads hourly; a day is the longest wait worth allowing
	DefaultBatchIn = time.Minute    // the batch interval when the admin gives none
	MaxEndpoints   = 50             // each endpoint costs a scan of the log per interval
)

// Alerter tells admins that an endpoint was switched off; alerts.Service implements it. One alert per
// owner and failure streak (failingSince), however often it is called, so a step may call it again.
type Alerter interface {
	WebhookDisabled(ctx context.Context, owners []string, endpointID, url, reason string, failingSince, at time.Time) error
}

// Options tune the service; the zero value gives the defaults.
type Options struct {
	Destinations Destinations
	Resolver     Resolver      // default net.DefaultResolver
	Client       *http.Client  // default Destinations.Client(Timeout)
	Timeout      time.Duration // one delivery attempt; default 10s
	Poll         time.Duration // how often due endpoints are looked for; default 1s
	Concurrency  int           // deliveries in flight at once, one per endpoint at most; default 4
	MaxBatch     int           // records per delivery; default 500
	Alerts       Alerter       // nil: no alert when an endpoint is disabled (it is still logged)
	Admins       []string      // also alerted when an endpoint is disabled, beside whoever registered it
	Now          func() time.Time
	Jitter       func(n int64) int64 // a number in [0, n); default math/rand/v2's Int64N
	Log          *slog.Logger
	// Instance names this process as the holder of endpoint leases; default random.
	Instance string
	// Lease is how long a step holds its endpoint against other instances; default 2×Timeout + 30s,
	// and never under Timeout + 30s, so a step cut off by its deadline has saved before the lease ends.
	// A step that ends without saving (the store failed, the process died) frees it only when it runs out.
	Lease time.Duration
}

// Service answers the response feed, keeps webhook endpoints and delivers to them.
type Service struct {
	store Store
	opts  Options
	log   *slog.Logger
	slots chan struct{}

	mu   sync.Mutex
	busy map[string]bool // endpoints with a delivery in flight
	wg   sync.WaitGroup
}

// NewService returns a service; call Run to start delivering.
func NewService(store Store, opts Options) *Service {
	if opts.Resolver == nil {
		opts.Resolver = net.DefaultResolver
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Client == nil {
		opts.Client = opts.Destinations.Client(opts.Timeout)
	}
	if opts.Instance == "" {
		opts.Instance = "engage-" + followed.NewID(time.Now())
	}
	if opts.Lease <= 0 {
		opts.Lease = 2*opts.Timeout + LeaseMargin
	}
	opts.Lease = max(opts.Lease, opts.Timeout+LeaseMargin)
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	if opts.MaxBatch <= 0 || opts.MaxBatch > MaxPage {
		opts.MaxBatch = MaxPage
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Jitter == nil {
		opts.Jitter = rand.Int64N
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	return &Service{store: store, opts: opts, log: opts.Log, slots: make(chan struct{}, opts.Concurrency), busy: map[string]bool{}}
}

func requireReader(who auth.Identity) error {
	if !who.Admin && !who.Integration {
		return fmt.Errorf("feed: %w", auth.Deny("the response feed is for admins and integrations"))
	}
	return nil
}

func requireAdmin(who auth.Identity, what string) error {
	if !who.Admin {
		return fmt.Errorf("feed: %w", auth.Deny(what+" needs an admin"))
	}
	return nil
}

func (s *Service) now() time.Time { return s.opts.Now().UTC().Truncate(time.Millisecond) }

// ResponsesInput asks for a page of the feed.
type ResponsesInput struct {
	Since          string // a cursor from an earlier page; "" starts at the beginning
	First          int    // 0 = DefaultPage
	Categories     []Category
	IncludeMachine bool
}

// ResponsePage is a page of the feed; Cursor is where the next page starts, even when the page is
// empty because every position read was filtered out.
type ResponsePage struct {
	Records []Record
	Cursor  string
	HasMore bool
}

// Responses pages through the response records in the order they were stored: a record stored
// while a reader pages is always after its cursor, so nothing is skipped and nothing comes twice.
func (s *Service) Responses(ctx context.Context, who auth.Identity, in ResponsesInput) (ResponsePage, error) {
	if err := requireReader(who); err != nil {
		return ResponsePage{}, err
	}
	switch {
	case in.First < 0:
		return ResponsePage{}, fmt.Errorf("%w: first must not be negative", followed.ErrBadInput)
	case in.First == 0:
		in.First = DefaultPage
	case in.First > MaxPage:
		in.First = MaxPage
	}
	after, err := DecodeCursor(in.Since)
	if err != nil {
		return ResponsePage{}, err
	}
	p, err := s.store.Responses(ctx, Query{After: after, Limit: in.First, Kinds: Kinds(in.Categories), IncludeMachine: in.IncludeMachine})
	if err != nil {
		return ResponsePage{}, fmt.Errorf("feed: responses: %w", err)
	}
	through := max(p.Through, after)
	if after > p.Newest {
		through = p.Newest // a cursor ahead of the log goes on from its end, as Register's does
	}
	return ResponsePage{Records: p.Records, Cursor: EncodeCursor(through), HasMore: p.Through < p.Newest}, nil
}

// EndpointInput is an admin's new webhook.
type EndpointInput struct {
	URL        string
	Secret     string
	Categories []string      // none: every category
	Interval   time.Duration // 0: DefaultBatchIn
	Since      string        // a feed cursor to start after; "": from now on
}

// Register checks and stores a webhook endpoint (admins): a bad URL, secret, category or interval is
// refused here, not discovered at the first delivery.
func (s *Service) Register(ctx context.Context, who auth.Identity, in EndpointInput) (Endpoint, error) {
	if err := requireAdmin(who, "register a webhook"); err != nil {
		return Endpoint{}, err
	}
	now := s.now()
	ep := Endpoint{ID: followed.NewID(now), CreatedBy: who.Email, CreatedAt: now, UpdatedBy: who.Email, UpdatedAt: now}
	if err := s.configure(ctx, &ep, &in.URL, &in.Secret, in.Categories, &in.Interval); err != nil {
		return Endpoint{}, err
	}
	eps, err := s.store.Endpoints(ctx)
	if err != nil {
		return Endpoint{}, fmt.Errorf("feed: register webhook: %w", err)
	}
	if len(eps) >= MaxEndpoints {
		return Endpoint{}, fmt.Errorf("%w: already %d webhooks, the limit", followed.ErrBadInput, len(eps))
	}
	start, err := DecodeCursor(in.Since)
	if err != nil {
		return Endpoint{}, err
	}
	newest, err := s.store.NewestSeq(ctx)
	if err != nil {
		return Endpoint{}, fmt.Errorf("feed: register webhook: %w", err)
	}
	// From now on without a cursor; and a cursor ahead of the log (another Engage's, or past events
	// since erased) starts from now too, where waiting for the log to reach it would skip everything.
	if in.Since == "" || start > newest {
		start = newest
	}
	ep.State = State{Cursor: start, NextAt: now.Add(ep.Interval)}
	if err := s.store.CreateEndpoint(ctx, ep); err != nil {
		return Endpoint{}, fmt.Errorf("feed: register webhook: %w", err)
	}
	return ep, nil
}

// EndpointChange is an admin's edit; nil fields keep their value. Enable switches a disabled endpoint
// back on, retrying its pending batch at once.
type EndpointChange struct {
	URL        *string
	Secret     *string
	Categories []string
	Interval   *time.Duration
	Enable     bool
}

// Update changes an endpoint (admins), checked as strictly as Register.
func (s *Service) Update(ctx context.Context, who auth.Identity, id string, c EndpointChange) (Endpoint, error) {
	if err := requireAdmin(who, "update a webhook"); err != nil {
		return Endpoint{}, err
	}
	ep, err := s.store.Endpoint(ctx, id)
	if err != nil {
		return Endpoint{}, fmt.Errorf("feed: webhook %s: %w", id, err)
	}
	if err := s.configure(ctx, &ep, c.URL, c.Secret, c.Categories, c.Interval); err != nil {
		return Endpoint{}, err
	}
	ep.UpdatedBy, ep.UpdatedAt = who.Email, s.now()
	if err := s.store.UpdateEndpoint(ctx, ep, c.Enable); err != nil {
		return Endpoint{}, fmt.Errorf("feed: update webhook %s: %w", id, err)
	}
	if ep, err = s.store.Endpoint(ctx, id); err != nil {
		return Endpoint{}, fmt.Errorf("feed: webhook %s: %w", id, err)
	}
	return ep, nil
}

// configure validates and applies the given fields to ep.
func (s *Service) configure(ctx context.Context, ep *Endpoint, rawURL, secret *string, categories []string, interval *time.Duration) error {
	if rawURL != nil {
		u, err := s.opts.Destinations.CheckURL(ctx, s.opts.Resolver, *rawURL)
		if err != nil {
			return err
		}
		ep.URL = u.String()
	}
	if secret != nil {
		if err := checkSecret(*secret); err != nil {
			return err
		}
		ep.Secret = *secret
	}
	if categories != nil || ep.Categories == nil {
		cs, err := ParseCategories(categories)
		if err != nil {
			return err
		}
		ep.Categories = cs
	}
	if interval != nil {
		d := *interval
		if d == 0 {
			d = DefaultBatchIn
		}
		if d < MinInterval || d > MaxInterval {
			return fmt.Errorf("%w: batch interval %s must be between %s and %s", followed.ErrBadInput, d, MinInterval, MaxInterval)
		}
		ep.Interval = d
	}
	return nil
}

func checkSecret(secret string) error {
	switch {
	case len(secret) < MinSecret:
		return fmt.Errorf("%w: the webhook secret is %d bytes; give at least %d random bytes", followed.ErrBadInput, len(secret), MinSecret)
	case len(secret) > MaxSecret:
		return fmt.Errorf("%w: the webhook secret is %d bytes, over the limit of %d", followed.ErrBadInput, len(secret), MaxSecret)
	case strings.IndexFunc(secret, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) >= 0:
		return fmt.Errorf("%w: the webhook secret has spaces or control characters", followed.ErrBadInput)
	}
	return nil
}

// Delete removes an endpoint and its delivery log (admins).
func (s *Service) Delete(ctx context.Context, who auth.Identity, id string) error {
	if err := requireAdmin(who, "delete a webhook"); err != nil {
		return err
	}
	if err := s.store.DeleteEndpoint(ctx, id); err != nil {
		return fmt.Errorf("feed: delete webhook %s: %w", id, err)
	}
	return nil
}

// Endpoints lists the webhook endpoints (admins).
func (s *Service) Endpoints(ctx context.Context, who auth.Identity) ([]Endpoint, error) {
	if err := requireAdmin(who, "list webhooks"); err != nil {
		return nil, err
	}
	eps, err := s.store.Endpoints(ctx)
	if err != nil {
		return nil, fmt.Errorf("feed: webhooks: %w", err)
	}
	return eps, nil
}

// Deliveries lists an endpoint's delivery log, newest first (admins).
func (s *Service) Deliveries(ctx context.Context, who auth.Identity, endpointID string, first int) ([]Delivery, error) {
	if err := requireAdmin(who, "read the delivery log"); err != nil {
		return nil, err
	}
	switch {
	case first < 0:
		return nil, fmt.Errorf("%w: first must not be negative", followed.ErrBadInput)
	case first == 0:
		first = DefaultPage
	case first > MaxPage:
		first = MaxPage
	}
	if _, err := s.store.Endpoint(ctx, endpointID); err != nil {
		return nil, fmt.Errorf("feed: webhook %s: %w", endpointID, err)
	}
	ds, err := s.store.Deliveries(ctx, endpointID, first)
	if err != nil {
		return nil, fmt.Errorf("feed: deliveries of %s: %w", endpointID, err)
	}
	return ds, nil
}
