package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/engage-email/engage/auth"
	"github.com/engage-email/engage/followed"
)

// Options tune the service and its worker; the zero value is fine for production.
type Options struct {
	// Instance names this process as a lease holder; default random.
	Instance string
	// Lease is how long a claimed job is this instance's; a call to the mailer is cut off before it ends,
	// so a job is never worked on by two instances at once. Default 2 minutes.
	Lease time.Duration
	// PollEvery is how often the worker looks for due jobs; default 5 seconds.
	PollEvery time.Duration
	// Concurrency is how many jobs the worker sends at once; default 4.
	Concurrency int
	// RetryBase and RetryMax bound the backoff between tries when the mailer named no wait; defaults
	// 30 seconds and 15 minutes.
	RetryBase, RetryMax time.Duration
	// MaxAttempts is how many tries a job gets before it fails; default 8.
	MaxAttempts int
	// Files lists the files each render's mail carries; nil sends mail without attachments.
	Files Files
	// Gate says which recipients' mail bounced (reason followed.ReasonSuppressedBounce): delivery
	// refuses to send to them until an admin lifts the suppression. Nil checks nothing.
	Gate followed.Gate
	// OnSend, when set, hears of a message as a try hands its first render to the mailer, so that the
	// tracking hits that follow at once (a gateway's scanner) are judged from the real send time, not
	// the message's creation hours before a scheduled send.
	OnSend func(messageID string, at time.Time)
	Now    func() time.Time
	Log    *slog.Logger
}

// Service sends messages now or later and answers where each stands.
type Service struct {
	store    Store
	messages Messages
	mailer   Mailer
	opts     Options
}

// New returns a Service; run its worker with Run.
func New(store Store, messages Messages, mailer Mailer, opts Options) *Service {
	if opts.Instance == "" {
		opts.Instance = "engage-" + followed.NewID(time.Now())
	}
	if opts.Lease <= 0 {
		opts.Lease = 2 * time.Minute
	}
	if opts.PollEvery <= 0 {
		opts.PollEvery = 5 * time.Second
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	if opts.RetryBase <= 0 {
		opts.RetryBase = 30 * time.Second
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = 15 * time.Minute
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 8
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Service{store: store, messages: messages, mailer: mailer, opts: opts}
}

// Instance is the name this service holds leases under.
func (s *Service) Instance() string { return s.opts.Instance }

func (s *Service) now() time.Time { return s.opts.Now().UTC().Truncate(time.Millisecond) }

// own returns the caller's message; another salesperson's (even for an admin, who may read it but not
// send as its owner) is followed.ErrNotFound.
func (s *Service) own(ctx context.Context, who auth.Identity, id string) (followed.Message, error) {
	m, err := s.messages.Message(ctx, id)
	if err != nil {
		return followed.Message{}, fmt.Errorf("delivery: message %s: %w", id, err)
	}
	if m.Owner != who.Email {
		return followed.Message{}, fmt.Errorf("delivery: message %s: %w", id, followed.ErrNotFound)
	}
	return m, nil
}

// Send sends the caller's message now (at zero), with their own credential, or schedules it for at.
// It answers the job as it stands afterwards: SENT, SCHEDULED (at, or a retry after a temporary
// refusal) or FAILED with the reason.
func (s *Service) Send(ctx context.Context, who auth.Identity, id string, at time.Time) (Job, error) {
	m, err := s.own(ctx, who, id)
	if err != nil {
		return Job{}, err
	}
	if err := s.suppressed(ctx, m); err != nil {
		return Job{}, fmt.Errorf("%w: %s", followed.ErrBadInput, err.Reason)
	}
	now := s.now()
	if !at.IsZero() {
		if err := checkSendTime(at, now); err != nil {
			return Job{}, err
		}
	}
	j := Job{MessageID: m.ID, Owner: m.Owner, CreatedAt: now}
	if at.IsZero() {
		// Leased to this instance from the start: a worker finds it only if this process dies mid-send.
		j.Status, j.DueAt, j.Attempts = StatusSending, now, 1
		j.LeaseOwner, j.LeaseUntil = s.opts.Instance, now.Add(s.opts.Lease)
	} else {
		at = at.UTC().Truncate(time.Millisecond)
		j.Status, j.ScheduledAt, j.DueAt = StatusScheduled, at, at
	}
	if err := s.store.CreateJob(ctx, j); err != nil {
		if errors.Is(err, ErrJobExists) {
			return Job{}, s.alreadyMessage(ctx, id)
		}
		return Job{}, fmt.Errorf("delivery: send %s: %w", id, err)
	}
	if !at.IsZero() {
		return j, nil
	}
	return s.deliver(ctx, j, m, Sender{Mailbox: m.Owner, UserToken: who.Token})
}

// alreadyMessage says in the salesperson's words why the message cannot be sent again.
func (s *Service) alreadyMessage(ctx context.Context, id string) error {
	j, err := s.store.Job(ctx, id)
	if err != nil {
		return fmt.Errorf("%w: message %s is already sent or on its way", followed.ErrBadInput, id)
	}
	switch j.Status {
	case StatusSent:
		return fmt.Errorf("%w: message %s was already sent at %s", followed.ErrBadInput, id, j.SentAt.Format(time.RFC3339))
	case StatusScheduled:
		return fmt.Errorf("%w: message %s is already scheduled for %s: reschedule or cancel it instead", followed.ErrBadInput, id,
			j.DueAt.Format(time.RFC3339))
	default:
		return fmt.Errorf("%w: message %s is being sent", followed.ErrBadInput, id)
	}
}

// Cancel cancels the caller's scheduled send; the message goes back to DRAFT and may be sent again.
func (s *Service) Cancel(ctx context.Context, who auth.Identity, id string) (Job, error) {
	if _, err := s.own(ctx, who, id); err != nil {
		return Job{}, err
	}
	if _, err := s.store.CancelJob(ctx, id, s.now()); err != nil {
		return Job{}, s.stateError(ctx, "cancel", id, err)
	}
	return Job{MessageID: id, Owner: who.Email, Status: StatusDraft}, nil
}

// maxScheduleAhead bounds a scheduled send, as reminders are bounded: a time years ahead is a typo.
const maxScheduleAhead = 366 * 24 * time.Hour

// checkSendTime says why at cannot be a scheduled send's time.
func checkSendTime(at, now time.Time) error {
	switch {
	case !at.After(now):
		return fmt.Errorf("%w: the send time %s is not in the future", followed.ErrBadInput, at.UTC().Format(time.RFC3339))
	case at.Sub(now) > maxScheduleAhead:
		return fmt.Errorf("%w: the send time %s is more than a year ahead", followed.ErrBadInput, at.UTC().Format(time.RFC3339))
	}
	return nil
}

// Reschedule moves the caller's scheduled send to at, which must be in the future, within a year.
func (s *Service) Reschedule(ctx context.Context, who auth.Identity, id string, at time.Time) (Job, error) {
	if _, err := s.own(ctx, who, id); err != nil {
		return Job{}, err
	}
	now := s.now()
	if err := checkSendTime(at, now); err != nil {
		return Job{}, err
	}
	j, err := s.store.RescheduleJob(ctx, id, at.UTC().Truncate(time.Millisecond), now)
	if err != nil {
		return Job{}, s.stateError(ctx, "reschedule", id, err)
	}
	return j, nil
}

// stateError explains why a scheduled send could not be changed.
func (s *Service) stateError(ctx context.Context, what, id string, err error) error {
	if errors.Is(err, followed.ErrNotFound) {
		return fmt.Errorf("%w: message %s is not scheduled (it is a draft): nothing to %s", followed.ErrBadInput, id, what)
	}
	if !errors.Is(err, ErrJobState) {
		return fmt.Errorf("delivery: %s %s: %w", what, id, err)
	}
	j, jerr := s.store.Job(ctx, id)
	if jerr != nil {
		return fmt.Errorf("%w: message %s can no longer be changed", followed.ErrBadInput, id)
	}
	switch j.Status {
	case StatusSent:
		return fmt.Errorf("%w: message %s was already sent: too late to %s", followed.ErrBadInput, id, what)
	case StatusFailed:
		return fmt.Errorf("%w: message %s failed to send (%s): send it again instead", followed.ErrBadInput, id, j.Reason)
	}
	return fmt.Errorf("%w: message %s is being sent right now: too late to %s", followed.ErrBadInput, id, what)
}

// Status answers where a message stands; a message never sent is DRAFT. The caller has already been
// allowed to see the message.
func (s *Service) Status(ctx context.Context, messageID string) (Job, error) {
	j, err := s.store.Job(ctx, messageID)
	if errors.Is(err, followed.ErrNotFound) {
		return Job{MessageID: messageID, Status: StatusDraft}, nil
	}
	if err != nil {
		return Job{}, fmt.Errorf("delivery: status of %s: %w", messageID, err)
	}
	if j.Status == StatusSending && !j.LeaseUntil.After(s.now()) {
		j.Status = StatusScheduled // its holder died; a worker takes it up again
	}
	return j, nil
}

// SendStates answers, from the store alone, whether a message's send is asked for and has not gone
// out: alerts holds follow-up reminders by it, and is wired before the delivery service.
type SendStates struct {
	Store interface {
		Job(ctx context.Context, messageID string) (Job, error)
		RenderSends(ctx context.Context, messageID string) ([]RenderSend, error)
	}
}

// SendPending implements alerts.Sends: a message without a job (a draft, a cancelled send, mail the
// Outlook add-in sent itself) is not pending, nor one some render of which was sent; one whose job is
// not SENT and sent nothing is, due at its job's time.
func (s SendStates) SendPending(ctx context.Context, messageID string) (time.Time, bool, error) {
	j, err := s.Store.Job(ctx, messageID)
	if errors.Is(err, followed.ErrNotFound) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("delivery: send state of %s: %w", messageID, err)
	}
	if j.Status == StatusSent {
		return j.SentAt, false, nil
	}
	// Some recipients may have it already (a send that failed or waits to retry the rest): their
	// follow-up is due as for any mail that left.
	rs, err := s.Store.RenderSends(ctx, messageID)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("delivery: send state of %s: %w", messageID, err)
	}
	var first time.Time
	for _, r := range rs {
		if !r.SentAt.IsZero() && (first.IsZero() || r.SentAt.Before(first)) {
			first = r.SentAt
		}
	}
	if !first.IsZero() {
		return first, false, nil
	}
	return j.DueAt, true, nil
}

// RenderSends lists the ids Microsoft 365 (or the outbox) gave each render of a message, for matching replies.
func (s *Service) RenderSends(ctx context.Context, messageID string) ([]RenderSend, error) {
	rs, err := s.store.RenderSends(ctx, messageID)
	if err != nil {
		return nil, fmt.Errorf("delivery: render sends of %s: %w", messageID, err)
	}
	return rs, nil
}

// suppressed refuses a message with a recipient whose mail bounced: sending again would only bounce
// again and hurt the sender's reputation.
func (s *Service) suppressed(ctx context.Context, m followed.Message) *PermanentError {
	if s.opts.Gate == nil {
		return nil
	}
	emails := make([]string, len(m.Recipients))
	for i, r := range m.Recipients {
		emails[i] = r.Email
	}
	v, err := s.opts.Gate.Verdict(ctx, emails)
	if err != nil {
		s.opts.Log.WarnContext(ctx, "bounce suppressions unknown: sending anyway", "message", m.ID, "err", err)
		return nil
	}
	var bounced []string
	for _, b := range v.Blocked {
		if b.Reason == followed.ReasonSuppressedBounce {
			bounced = append(bounced, b.Email)
		}
	}
	if len(bounced) == 0 {
		return nil
	}
	return &PermanentError{Reason: fmt.Sprintf("Mail to %s bounced, so Engage does not send to it until an admin lifts the suppression.",
		strings.Join(bounced, ", ")), Err: errSuppressed}
}

var errSuppressed = errors.New("recipient suppressed after bounces")
