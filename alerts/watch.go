package alerts

import (
	"context"
	"errors"
)

// Waker is what a backend that can notice stored alerts as they commit (MongoDB change streams)
// implements beside Store, so that alerts stored by other instances reach subscribers at once rather
// than on the next tick of the tail.
type Waker interface {
	// WatchAlerts calls wake soon after each alert is stored by any instance (a spurious call is
	// harmless: the tail reads the store) and blocks until ctx is done, then returns nil; an error
	// means the store cannot watch (a MongoDB standalone, say) and the tail falls back to polling.
	WatchAlerts(ctx context.Context, wake func()) error
}

// watch runs the store's Waker, if it has one, waking the tailer on each stored alert; when the watch
// ends with ctx still running it is logged once and fallback is closed so the tail polls at TailInterval.
func (s *Service) watch(ctx context.Context, w Waker, fallback chan<- struct{}) {
	err := w.WatchAlerts(ctx, s.notify)
	if ctx.Err() != nil {
		return
	}
	if err == nil {
		err = errors.New("the watch ended on its own")
	}
	s.log.WarnContext(ctx, "alert watch unavailable; other instances' alerts are found by polling", "interval", s.opts.TailInterval, "err", err)
	close(fallback)
}
