package delivery

import (
	"context"
	"time"

	"github.com/engage-email/engage/followed"
)

// Store is what delivery needs from a backend. Every method is atomic; the lease-guarded ones write
// nothing and return ErrLeaseLost when instance no longer holds the job.
type Store interface {
	// CreateJob stores j as the message's job. A FAILED job of the message is replaced (its render
	// records are kept, so renders already sent are not sent again); any other existing job makes it
	// return ErrJobExists.
	CreateJob(ctx context.Context, j Job) error
	// Job returns the message's job, or followed.ErrNotFound.
	Job(ctx context.Context, messageID string) (Job, error)
	// CancelJob deletes the message's job when it is SCHEDULED, not leased at now and no render of it
	// was sent; ErrJobState otherwise, followed.ErrNotFound when there is none.
	CancelJob(ctx context.Context, messageID string, now time.Time) (Job, error)
	// RescheduleJob moves a SCHEDULED job not leased at now to at; ErrJobState otherwise.
	RescheduleJob(ctx context.Context, messageID string, at, now time.Time) (Job, error)
	// ClaimDueJobs leases to instance until now+lease up to limit jobs that are SCHEDULED and due, or
	// SENDING with an expired lease (their holder died), marks them SENDING and counts the attempt.
	// Two claimers never both get a job while its lease runs.
	ClaimDueJobs(ctx context.Context, instance string, now time.Time, lease time.Duration, limit int) ([]Job, error)
	// FinishJob settles a job instance holds: SENT, FAILED, or SCHEDULED again (retry at j.DueAt), with
	// j.Reason and j.SentAt, releasing the lease; ErrLeaseLost when instance no longer holds it.
	FinishJob(ctx context.Context, instance string, j Job) error
	// RenderSends lists what happened to each render of a message that reached the mailbox, by render.
	RenderSends(ctx context.Context, messageID string) ([]RenderSend, error)
	// RecordDraft stores a render's draft ids while instance holds the message's job; a render already
	// sent keeps its ids. Empty ids clear an unsent render's draft (it was deleted), so it is drafted again.
	RecordDraft(ctx context.Context, instance string, r RenderSend) error
	// MarkRenderSent records that a render was sent at, while instance holds the message's job.
	MarkRenderSent(ctx context.Context, instance, messageID string, render int, at time.Time) error
}

// Messages reads the messages delivery sends; followed.Store satisfies it.
type Messages interface {
	Message(ctx context.Context, id string) (followed.Message, error)
}
