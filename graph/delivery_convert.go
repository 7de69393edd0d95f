package graph

import (
	"context"
	"fmt"
	"time"

	"github.com/engage-email/engage/auth"
	"github.com/engage-email/engage/delivery"
	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/graph/model"
)

// OutboxPath is where the server shows one outbox mail, followed by its id.
const OutboxPath = "/outbox/"

// sendStatus reads where a message stands; the caller was allowed to see the message already.
func (r *Resolver) sendStatus(ctx context.Context, obj *model.FollowedMessage) (delivery.Job, error) {
	if r.Delivery == nil {
		return delivery.Job{MessageID: obj.ID, Status: delivery.StatusDraft}, nil
	}
	return memoizedJob(ctx, obj.ID, func() (delivery.Job, error) { return r.Delivery.Status(ctx, obj.ID) })
}

// deliver runs a delivery mutation on message id for the caller and answers with the message as it
// then stands.
func (r *Resolver) deliver(ctx context.Context, id string, do func(*delivery.Service, auth.Identity) error) (*model.FollowedMessage, error) {
	who, err := auth.FromContext(ctx)
	if err != nil {
		return nil, err
	}
	svc, err := r.deliveryService()
	if err != nil {
		return nil, err
	}
	if err := do(svc, who); err != nil {
		return nil, err
	}
	return r.afterDelivery(ctx, who, id)
}

// afterDelivery answers a delivery mutation with the message as it now stands.
func (r *Resolver) afterDelivery(ctx context.Context, who auth.Identity, id string) (*model.FollowedMessage, error) {
	m, err := r.Followed.Message(ctx, who, id)
	if err != nil {
		return nil, err
	}
	return followedMessage(m), nil
}

// deliveryService is the delivery feature, or an error when this Engage was built without it.
func (r *Resolver) deliveryService() (*delivery.Service, error) {
	if r.Delivery == nil {
		return nil, fmt.Errorf("%w: sending is not configured on this server", followed.ErrBadInput)
	}
	return r.Delivery, nil
}

func outboxMail(e delivery.OutboxEntry) *model.OutboxMail {
	emails := func(as []delivery.Address) []string {
		out := make([]string, len(as))
		for i, a := range as {
			out[i] = a.Email
		}
		return out
	}
	return &model.OutboxMail{ID: e.ID, MessageID: e.MessageID(), From: e.From, To: emails(e.To), Cc: emails(e.Cc),
		Bcc: emails(e.Bcc), Subject: e.Subject, HTML: e.HTML, SentAt: e.SentAt, URL: OutboxPath + e.ID}
}

func optionalTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}
