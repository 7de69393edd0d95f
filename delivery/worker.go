package delivery

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/engage-email/engage/followed"
)

// Run claims and sends due jobs every PollEvery until ctx is done.
func (s *Service) Run(ctx context.Context) {
	t := time.NewTicker(s.opts.PollEvery)
	defer t.Stop()
	for {
		if _, err := s.DeliverDue(ctx); err != nil && ctx.Err() == nil {
			s.opts.Log.ErrorContext(ctx, "due sends not claimed; retrying on the next tick", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// DeliverDue claims due jobs, Concurrency at a time, and settles them until none is left; it returns how
// many it settled. Jobs another instance holds are left alone.
func (s *Service) DeliverDue(ctx context.Context) (int, error) {
	var settled atomic.Int64
	for ctx.Err() == nil {
		js, err := s.store.ClaimDueJobs(ctx, s.opts.Instance, s.now(), s.opts.Lease, s.opts.Concurrency)
		if err != nil {
			return int(settled.Load()), fmt.Errorf("delivery: claim due jobs: %w", err)
		}
		var wg sync.WaitGroup
		for _, j := range js {
			wg.Go(func() {
				if _, err := s.work(ctx, j); err == nil {
					settled.Add(1)
				}
			})
		}
		wg.Wait()
		if len(js) < s.opts.Concurrency {
			break
		}
	}
	return int(settled.Load()), nil
}

// work sends one claimed job with the application's own credential.
func (s *Service) work(ctx context.Context, j Job) (Job, error) {
	m, err := s.messages.Message(ctx, j.MessageID)
	if errors.Is(err, followed.ErrNotFound) {
		j.Status, j.Reason = StatusFailed, "The message no longer exists in Engage."
		return j, s.finish(ctx, j)
	}
	if err != nil {
		s.opts.Log.ErrorContext(ctx, "scheduled message not read; its lease will run out and it is tried again",
			"message", j.MessageID, "err", err)
		return j, err
	}
	return s.deliver(ctx, j, m, Sender{Mailbox: j.Owner})
}

// deliver sends every render of m not yet sent and settles j: SENT, FAILED, or SCHEDULED for a retry.
// Mailer calls are cut off a quarter-lease before the lease ends, so no one else holds it meanwhile.
func (s *Service) deliver(ctx context.Context, j Job, m followed.Message, from Sender) (Job, error) {
	ctx = context.WithoutCancel(ctx) // a sender's closed connection or a shutdown does not stop a send halfway
	// The lease is in the service's clock; the cut-off runs on the real one.
	jctx, cancel := context.WithTimeout(ctx, j.LeaseUntil.Sub(s.now())-s.opts.Lease/4)
	defer cancel()
	var err error
	if perm := s.suppressed(jctx, m); perm != nil {
		err = perm // suppressed since it was scheduled
	} else {
		err = s.sendRenders(jctx, j, m, from)
	}
	now := s.now()
	var perm *PermanentError
	var retry *RetryError
	switch {
	case err == nil:
		j.Status, j.SentAt, j.Reason = StatusSent, now, ""
	case errors.Is(err, ErrLeaseLost):
		s.opts.Log.WarnContext(ctx, "send lease lost; another instance finishes it", "message", m.ID)
		return j, err
	case errors.As(err, &perm):
		j.Status, j.Reason = StatusFailed, perm.Reason
		s.opts.Log.WarnContext(ctx, "send failed for good", "message", m.ID, "err", err)
	case j.Attempts >= s.opts.MaxAttempts:
		j.Status = StatusFailed
		j.Reason = fmt.Sprintf("Gave up after %d tries: %s", j.Attempts, retryReason(err))
		s.opts.Log.WarnContext(ctx, "send failed after every try", "message", m.ID, "attempts", j.Attempts, "err", err)
	default:
		var after time.Duration
		if errors.As(err, &retry) {
			after = retry.After
		}
		j.Status, j.DueAt = StatusScheduled, now.Add(s.retryDelay(j.Attempts, after))
		j.Reason = retryReason(err) + " Next try at " + j.DueAt.Format("15:04 MST") + "."
		s.opts.Log.InfoContext(ctx, "send to be retried", "message", m.ID, "due", j.DueAt, "err", err)
	}
	if err := s.finish(ctx, j); err != nil {
		return j, err
	}
	j.LeaseOwner, j.LeaseUntil = "", time.Time{}
	return j, nil
}

func (s *Service) finish(ctx context.Context, j Job) error {
	if err := s.store.FinishJob(ctx, s.opts.Instance, j); err != nil {
		if errors.Is(err, ErrLeaseLost) {
			s.opts.Log.WarnContext(ctx, "send lease lost before settling; another instance finishes it", "message", j.MessageID)
		}
		return fmt.Errorf("delivery: settle %s: %w", j.MessageID, err)
	}
	return nil
}

// retryReason words a temporary failure for the salesperson.
func retryReason(err error) string {
	var retry *RetryError
	if errors.As(err, &retry) {
		return "The mail service asked Engage to slow down or was unavailable."
	}
	return "The mail service could not be reached."
}

// retryDelay honours the wait the service asked for, else backs off exponentially up to RetryMax.
func (s *Service) retryDelay(attempt int, after time.Duration) time.Duration {
	if after > 0 {
		return after
	}
	d := s.opts.RetryBase << max(attempt-1, 0)
	if d <= 0 || d > s.opts.RetryMax {
		d = s.opts.RetryMax
	}
	return d
}

// sendRenders takes each render of m through draft and send, resuming where a previous try stopped: a
// recorded draft is checked, sent only while it is still a draft, and drafted again only by a later send
// once the salesperson deleted it unsent.
func (s *Service) sendRenders(ctx context.Context, j Job, m followed.Message, from Sender) error {
	done, err := s.store.RenderSends(ctx, m.ID)
	if err != nil {
		return fmt.Errorf("delivery: render sends of %s: %w", m.ID, err)
	}
	byRender := make(map[int]RenderSend, len(done))
	for _, r := range done {
		byRender[r.Render] = r
	}
	announced := false // a try after one that sent some renders has nothing to announce: the send began then
	for _, r := range done {
		announced = announced || !r.SentAt.IsZero()
	}
	for _, r := range m.Renders {
		rec, ok := byRender[r.Index]
		if ok && !rec.SentAt.IsZero() {
			continue
		}
		if !ok || rec.DraftID == "" {
			d := draftOf(m, r)
			if d.Attachments, err = directFiles(ctx, s.opts.Files, m.ID, r.Tracked); err != nil {
				return err
			}
			ref, err := s.mailer.CreateDraft(ctx, from, d)
			if err != nil {
				return err
			}
			rec = RenderSend{MessageID: m.ID, Render: r.Index, DraftID: ref.ID, InternetMessageID: ref.InternetMessageID,
				ConversationID: ref.ConversationID}
			if err := s.store.RecordDraft(ctx, s.opts.Instance, rec); err != nil {
				return fmt.Errorf("delivery: record draft of %s/%d: %w", m.ID, r.Index, err)
			}
		} else {
			pending, err := s.mailer.DraftExists(ctx, from, rec.DraftID)
			if errors.Is(err, ErrDraftGone) {
				return s.forgetDraft(ctx, rec, err)
			}
			if err != nil {
				return err
			}
			if !pending { // sent by a try that died before recording it
				if err := s.store.MarkRenderSent(ctx, s.opts.Instance, m.ID, r.Index, s.now()); err != nil {
					return fmt.Errorf("delivery: mark %s/%d sent: %w", m.ID, r.Index, err)
				}
				continue
			}
		}
		if !announced && s.opts.OnSend != nil {
			announced = true
			s.opts.OnSend(m.ID, s.now())
		}
		if err := s.mailer.SendDraft(ctx, from, rec.DraftID); err != nil {
			return err
		}
		if err := s.store.MarkRenderSent(ctx, s.opts.Instance, m.ID, r.Index, s.now()); err != nil {
			return fmt.Errorf("delivery: mark %s/%d sent: %w", m.ID, r.Index, err)
		}
	}
	return nil
}

// forgetDraft fails the try of a render whose unsent draft the salesperson deleted (perhaps to stop it),
// and clears the render's draft record so that sending the message again drafts the render anew instead
// of failing on the deleted draft forever. The render was not sent: a recorded send is skipped before its
// draft is checked, and a draft sent unrecorded keeps its id in Sent Items (DraftExists answers false).
func (s *Service) forgetDraft(ctx context.Context, rec RenderSend, gone error) error {
	cleared := RenderSend{MessageID: rec.MessageID, Render: rec.Render}
	if err := s.store.RecordDraft(ctx, s.opts.Instance, cleared); err != nil {
		return fmt.Errorf("delivery: forget deleted draft of %s/%d: %w", rec.MessageID, rec.Render, err)
	}
	return &PermanentError{Reason: "The draft Engage saved in your mailbox was deleted before it was sent. " +
		"Send the message again and Engage drafts it anew.", Err: gone}
}

// draftOf addresses one render to its recipients, each in the header they were given.
func draftOf(m followed.Message, r followed.Render) Draft {
	d := Draft{Subject: m.Subject, HTML: r.HTML, Headers: map[string]string{
		HeaderMessageID: m.ID, HeaderRender: strconv.Itoa(r.Index)}}
	for _, i := range r.Targets {
		if i < 0 || i >= len(m.Recipients) {
			continue
		}
		rc := m.Recipients[i]
		a := Address{Email: rc.Email, Name: rc.Name}
		switch rc.Kind {
		case followed.KindCc:
			d.Cc = append(d.Cc, a)
		case followed.KindBcc:
			d.Bcc = append(d.Bcc, a)
		default:
			d.To = append(d.To, a)
		}
	}
	return d
}
