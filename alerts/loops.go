package alerts

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/engage-email/engage/followed"
)

// tail follows the stored alerts by sequence and publishes them to this instance's subscribers: alerts
// stored here (woken at once), or by other instances (woken by the store's watch, else found on the
// next tick) take the same path. It ticks every interval; once fallback closes (the watch failed) it
// ticks every TailInterval instead.
func (s *Service) tail(ctx context.Context, last int64, interval time.Duration, fallback <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-fallback:
			fallback = nil // a nil channel is never ready: the reset happens once
			t.Reset(s.opts.TailInterval)
		case <-t.C:
		case <-s.wake:
		}
		for {
			as, err := s.store.AlertsAfter(ctx, last, tailPage)
			if err != nil {
				if ctx.Err() == nil {
					s.log.ErrorContext(ctx, "alert tail failed; retrying on the next tick", "after", last, "err", err)
				}
				break
			}
			if len(as) == 0 {
				break
			}
			s.hub.publish(as)
			last = as[len(as)-1].Seq
			if len(as) < tailPage {
				break
			}
		}
	}
}

// every runs step on each tick of d until ctx is done; a failed step is logged as what, and retried
// on the next tick.
func (s *Service) every(ctx context.Context, d time.Duration, what string, step func(context.Context) error) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := step(ctx); err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, what+"; retrying on the next tick", "err", err)
		}
	}
}

// schedule claims due reminders under a lease and settles them, once per tick.
func (s *Service) schedule(ctx context.Context) {
	s.every(ctx, s.opts.ReminderInterval, "reminders not fired", s.fireDue)
}

func (s *Service) fireDue(ctx context.Context) error {
	for {
		rs, err := s.store.ClaimDueReminders(ctx, s.opts.Instance, s.opts.Now().UTC(), s.opts.Lease, 100)
		if err != nil {
			return fmt.Errorf("alerts: claim reminders: %w", err)
		}
		fired := false
		for _, r := range rs {
			r, alert, err := s.settle(ctx, r)
			if err != nil {
				return err // the lease runs out and the reminder is claimed again
			}
			err = s.store.FinishReminder(ctx, s.opts.Instance, r, alert)
			if errors.Is(err, ErrLeaseLost) {
				s.log.WarnContext(ctx, "reminder lease lost; another instance settles it", "reminder", r.ID)
				continue
			}
			if err != nil {
				return fmt.Errorf("alerts: settle reminder %s: %w", r.ID, err)
			}
			fired = fired || alert != nil
		}
		if fired {
			s.notify()
		}
		if len(rs) < 100 {
			return nil
		}
	}
}

// watchEngagements turns new human clicks, attachment opens and replies into alerts for the owners
// who want them, moving a shared cursor over the events in the same transaction, so every event is
// considered once however many instances watch.
func (s *Service) watchEngagements(ctx context.Context) {
	s.every(ctx, s.opts.EngagementInterval, "engagement alerts not stored", s.engagements)
}

const engagementPage = 1000

func (s *Service) engagements(ctx context.Context) error {
	for {
		evs, through, err := s.store.Engagements(ctx, engagementPage)
		if err != nil {
			return fmt.Errorf("alerts: read engagements: %w", err)
		}
		if through == 0 {
			return nil
		}
		prefs := map[string]Preferences{}
		var as []Alert
		for _, e := range evs {
			kind, ok := engagementKinds[e.Event.Kind]
			if !ok || e.Event.Machine {
				continue
			}
			p, err := s.preferences(ctx, prefs, e.Owner)
			if err != nil {
				return err
			}
			if !p.Wants(kind) {
				continue
			}
			as = append(as, Alert{ID: followed.NewID(s.opts.Now()), Key: "event:" + e.Event.ID, Owner: e.Owner, Kind: kind,
				At: e.Event.At.UTC(), MessageID: e.Event.MessageID, Subject: e.Subject, Recipient: e.Recipient,
				Device: e.Event.Device, URL: e.Event.URL})
		}
		stored, err := s.store.AppendEngagementAlerts(ctx, as, through)
		if err != nil {
			return fmt.Errorf("alerts: store engagement alerts: %w", err)
		}
		if len(stored) > 0 {
			s.notify()
		}
	}
}

var engagementKinds = map[followed.EventKind]Kind{
	followed.LinkClicked:      LinkClicked,
	followed.AttachmentOpened: AttachmentOpened,
	followed.Replied:          ReplyReceived,
}
