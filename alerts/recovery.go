package alerts

import (
	"context"
	"fmt"
	"time"
)

// recoveryPage is how many unannounced first opens one store call returns.
const recoveryPage = 500

// recoverFirstOpens closes the gap between a batch of events and its first-open alerts, which are
// stored in a second transaction: a process that dies (or a store that fails) in between leaves the
// open recorded, so never reported again, and the alert missing. It looks back RecoveryWindow at
// once and then on every tick, and stores the missing alerts the way FirstOpens does; an alert's
// unique key makes a race with FirstOpens, or with another instance's sweep, store one alert.
func (s *Service) recoverFirstOpens(ctx context.Context) {
	t := time.NewTicker(s.opts.RecoveryInterval)
	defer t.Stop()
	for {
		n, err := s.RecoverFirstOpens(ctx, s.opts.Now().Add(-s.opts.RecoveryWindow))
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.ErrorContext(ctx, "lost first-open alerts not recovered; retrying on the next tick", "err", err)
		case n > 0:
			s.log.WarnContext(ctx, "recovered first-open alerts lost between the events commit and theirs", "alerts", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RecoverFirstOpens stores the alerts of the first opens at or after since that have none, page by
// page, and returns how many it stored: the sweep Start runs, callable at once by an operator or a test. Opens an owner does not want alerts for stay unannounced and
// come back on every sweep, so pages move on by time; a page whose opens all share the time it
// started from ends the sweep rather than read it again.
func (s *Service) RecoverFirstOpens(ctx context.Context, since time.Time) (int, error) {
	prefs := map[string]Preferences{}
	total := 0
	for {
		opens, err := s.store.UnannouncedFirstOpens(ctx, since, recoveryPage)
		if err != nil {
			return total, fmt.Errorf("alerts: unannounced first opens since %s: %w", since.Format(time.RFC3339), err)
		}
		n, err := s.appendFirstOpens(ctx, opens, prefs)
		total += n
		if err != nil {
			return total, err
		}
		if len(opens) < recoveryPage {
			return total, nil
		}
		last := opens[len(opens)-1].At
		if !last.After(since) {
			return total, nil
		}
		since = last
	}
}
