package alerts

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/engage-email/engage/auth"
)

// hub fans alerts out to this instance's subscribers. Publishing never blocks: each subscriber has a
// bounded buffer, and one that falls behind is dropped and told to resync rather than slowing the rest.
type hub struct {
	mu   sync.Mutex
	subs map[string][]*subscriber // by owner; a slice, as most owners have one or two subscribers
}

type subscriber struct {
	owner     string
	deliver   func(Alert) bool // non-blocking; false when the buffer is full
	overflow  func()
	last      int64 // highest Seq delivered, so replay and live never repeat an alert
	replaying bool
	missed    bool          // an alert was published while replaying: the replay reads the store again
	gone      chan struct{} // closed on removal; only a replaying subscriber has one
}

func newHub() *hub { return &hub{subs: map[string][]*subscriber{}} }

func (h *hub) add(s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.subs[s.owner] = append(h.subs[s.owner], s)
}

// remove takes s out; it reports false when s was already gone.
func (h *hub) remove(s *subscriber) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.removeLocked(s)
}

func (h *hub) removeLocked(s *subscriber) bool {
	subs := h.subs[s.owner]
	i := slices.Index(subs, s)
	if i < 0 {
		return false
	}
	if len(subs) == 1 {
		delete(h.subs, s.owner)
	} else {
		h.subs[s.owner] = slices.Delete(subs, i, i+1)
	}
	if s.gone != nil {
		close(s.gone)
	}
	return true
}

// publish hands alerts, in Seq order, to their owners' subscribers.
func (h *hub) publish(as []Alert) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, a := range as {
		// Backwards: removing an overflowing subscriber shifts only the ones already served.
		subs := h.subs[a.Owner]
		for i := len(subs) - 1; i >= 0; i-- {
			s := subs[i]
			switch {
			case a.Seq <= s.last:
			case s.replaying:
				s.missed = true // it is stored (alerts are published only once stored): the replay will read it
			case s.deliver(a):
				s.last = a.Seq
			default:
				h.removeLocked(s)
				go s.overflow()
			}
		}
	}
}

// count is the number of subscribers, for tests and metrics.
func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, subs := range h.subs {
		n += len(subs)
	}
	return n
}

// SubscribeOptions tune one subscription.
type SubscribeOptions struct {
	// Since is a cursor: alerts after it are replayed before live ones; "" streams only new alerts.
	Since string
	// OnOverflow is called (once, on its own goroutine) when the subscriber fell behind and was
	// dropped; the channel is closed after it returns. The caller should tell its client to resync.
	OnOverflow func()
}

// Subscribe streams the caller's alerts, converted by conv, until ctx is done or the subscriber falls
// behind (then OnOverflow runs and the channel closes). A live subscriber costs no goroutine: the hub
// sends into its buffered channel directly; only a replay runs on a goroutine of its own, until caught up.
func Subscribe[T any](ctx context.Context, s *Service, who auth.Identity, opts SubscribeOptions, conv func(Alert) T) (<-chan T, error) {
	if who.Email == "" {
		return nil, fmt.Errorf("alerts: subscribe: %w", auth.ErrUnauthenticated)
	}
	replaying := opts.Since != ""
	var since int64
	if replaying {
		var err error
		if since, err = DecodeCursor(opts.Since); err != nil {
			return nil, err
		}
		// A cursor ahead of the stored alerts (another Engage's, or alerts since erased) goes on from
		// their end: held as it is, it would drop every live alert until the sequence reached it.
		newest, err := s.store.LastAlertSeq(ctx)
		if err != nil {
			return nil, fmt.Errorf("alerts: subscribe: %w", err)
		}
		since = min(since, newest)
	}
	ch := make(chan T, s.opts.Buffer)
	sub := &subscriber{
		owner: who.Email,
		deliver: func(a Alert) bool {
			select {
			case ch <- conv(a):
				return true
			default:
				return false
			}
		},
		last:      since,
		replaying: replaying,
	}
	var replayDone chan struct{} // only a replaying subscriber has a second sender to wait for
	if replaying {
		sub.gone, replayDone = make(chan struct{}), make(chan struct{})
	}
	sub.overflow = func() {
		if opts.OnOverflow != nil {
			opts.OnOverflow()
		}
		if replayDone != nil {
			<-replayDone // the replay, the only other sender, has stopped: closing is safe
		}
		close(ch)
	}
	s.hub.add(sub)
	context.AfterFunc(ctx, func() { s.hub.remove(sub) })
	if !replaying {
		return ch, nil
	}
	go func() {
		defer close(replayDone)
		if err := replay(ctx, s, sub, ch, conv); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "alert replay failed; the client is told to resync", "owner", sub.owner, "err", err)
			if s.hub.remove(sub) {
				go sub.overflow()
			}
		}
	}()
	return ch, nil
}

// replay sends the stored alerts after sub.last, then turns sub live. Alerts published meanwhile are
// not held in memory: they are in the store, so the replay reads on until a pass saw nothing published.
func replay[T any](ctx context.Context, s *Service, sub *subscriber, ch chan<- T, conv func(Alert) T) error {
	last := sub.last
	for {
		s.hub.mu.Lock()
		sub.missed = false
		s.hub.mu.Unlock()
		for {
			page, err := s.store.ListAlerts(ctx, AlertQuery{Owner: sub.owner, After: last, Ascending: true, Limit: replayPage})
			if err != nil {
				return fmt.Errorf("alerts: replay after %d: %w", last, err)
			}
			for _, a := range page {
				select {
				case ch <- conv(a):
				case <-ctx.Done():
					return nil
				case <-sub.gone:
					return nil
				}
				last = a.Seq
			}
			if len(page) < replayPage {
				break
			}
		}
		s.hub.mu.Lock()
		if !sub.missed {
			sub.replaying, sub.last = false, last
			s.hub.mu.Unlock()
			return nil
		}
		s.hub.mu.Unlock()
	}
}
