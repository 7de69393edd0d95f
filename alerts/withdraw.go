package alerts

import (
	"context"
	"fmt"
	"time"

	"github.com/engage-email/engage/followed"
)

// withdrawPage is how many relabelled alerts one store call returns.
const withdrawPage = 200

// withdrawRelabelled takes back, every WithdrawInterval, the alerts whose event was later found to be
// a machine's. The alert went out within a second of the event, before the evidence could exist (a
// prefetch is known only when nothing follows it; a scanner, when it clicks the honeypot).
func (s *Service) withdrawRelabelled(ctx context.Context) {
	s.every(ctx, s.opts.WithdrawInterval, "alerts of machine events not withdrawn", func(ctx context.Context) error {
		n, err := s.WithdrawRelabelled(ctx, s.opts.Now().Add(-s.opts.WithdrawWindow))
		if n > 0 {
			s.log.InfoContext(ctx, "alerts withdrawn: their events were a machine's", "alerts", n)
		}
		return err
	})
}

// WithdrawRelabelled stores an ALERT_WITHDRAWN alert for each alert at or after since whose event is
// now labelled a machine's, and returns how many it stored: the sweep Start runs, callable at once by
// an operator or a test. A recipient's first open by a person, before or after a withdrawn first open,
// is then alerted in its own right: the withdrawn alert no longer holds the key, and the recovery sweep
// (run here at once) finds that open unannounced.
func (s *Service) WithdrawRelabelled(ctx context.Context, since time.Time) (int, error) {
	total := 0
	for {
		ws, err := s.store.RelabelledAlerts(ctx, since, withdrawPage)
		if err != nil {
			return total, fmt.Errorf("alerts: relabelled alerts since %s: %w", since.Format(time.RFC3339), err)
		}
		if len(ws) == 0 {
			return total, nil
		}
		now := s.opts.Now()
		for i := range ws {
			w := &ws[i]
			a := w.Alert
			w.By = Alert{ID: followed.NewID(now), Key: WithdrawnKey(a.ID), Owner: a.Owner, Kind: Withdrawn, At: a.At,
				MessageID: a.MessageID, Subject: a.Subject, Recipient: a.Recipient, Device: a.Device, URL: a.URL,
				Withdraws: a.ID, Machine: w.Reason}
		}
		stored, err := s.store.WithdrawAlerts(ctx, ws)
		if err != nil {
			return total, fmt.Errorf("alerts: withdraw %d alerts: %w", len(ws), err)
		}
		total += len(stored)
		if len(stored) > 0 {
			s.notify()
		}
		if _, err := s.RecoverFirstOpens(ctx, ws[0].Alert.At); err != nil {
			return total, err
		}
		if len(ws) < withdrawPage || len(stored) == 0 {
			// A full page that stored nothing would come back unchanged: another instance is
			// withdrawing the same alerts, and its next sweep or ours takes the rest.
			return total, nil
		}
	}
}
