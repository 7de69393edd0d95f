package consent

import (
	"context"
	"fmt"
	"time"
)

// purgeBatch bounds one delete, so that the purge never holds the single writer for long and
// tracking hits keep committing between batches.
const purgeBatch = 500

// Purge deletes the events older than the retention the settings ask for, in bounded batches, and
// returns how many went. With no retention set it deletes nothing.
func (s *Service) Purge(ctx context.Context) (int, error) {
	st, err := s.settings(ctx)
	if err != nil {
		return 0, err
	}
	if st.RetentionDays <= 0 {
		return 0, nil
	}
	cutoff := s.now().Add(-time.Duration(st.RetentionDays) * 24 * time.Hour)
	total := 0
	for {
		n, err := s.store.PurgeEvents(ctx, cutoff, purgeBatch)
		total += n
		if err != nil {
			return total, fmt.Errorf("consent: purge events before %s: %w", cutoff.Format(time.RFC3339), err)
		}
		if n < purgeBatch {
			return total, nil
		}
		if err := ctx.Err(); err != nil {
			return total, fmt.Errorf("consent: purge events: %w", err)
		}
	}
}

// Run purges on every tick until ctx is done; each tick also re-reads the settings, so that an admin's
// change made on another instance reaches this one's tracking endpoints.
func (s *Service) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := s.Purge(ctx)
			if err != nil && ctx.Err() == nil {
				s.log.ErrorContext(ctx, "retention purge failed", "purged", n, "err", err)
			} else if n > 0 {
				s.log.InfoContext(ctx, "retention purge", "purged", n)
			}
		}
	}
}
