package graph

import (
	"context"
	"fmt"
	"time"

	"github.com/engage-email/engage/auth"
	"github.com/engage-email/engage/feed"
	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/graph/model"
)

// feedCaller is the response feed and who is asking of it, or why neither can be had.
func (r *Resolver) feedCaller(ctx context.Context) (*feed.Service, auth.Identity, error) {
	who, err := auth.FromContext(ctx)
	if err != nil {
		return nil, who, err
	}
	if r.Feed == nil {
		return nil, who, fmt.Errorf("%w: the response feed is not configured on this server", ErrUnavailable)
	}
	return r.Feed, who, nil
}

func responseRecord(rec feed.Record) *model.ResponseRecord {
	out := &model.ResponseRecord{ID: rec.EventID, Cursor: feed.EncodeCursor(rec.Seq), Category: model.ResponseCategory(rec.Category),
		Message: &model.ResponseMessage{ID: rec.MessageID, Subject: rec.Subject, Owner: rec.Owner}, At: rec.At,
		Details: &model.ResponseDetails{Kind: model.InteractionKind(rec.Kind), Machine: rec.Machine}}
	if rec.Recipient != "" {
		out.Recipient = &rec.Recipient
	}
	if rec.URL != "" {
		out.Details.URL = &rec.URL
	}
	if rec.Device.Type != "" {
		out.Details.Device = &model.Device{Type: model.DeviceType(rec.Device.Type), Os: rec.Device.OS, Client: rec.Device.Client}
	}
	if rec.Reason != "" {
		out.Details.MachineReason = &rec.Reason
	}
	return out
}

func categoryNames(cs []model.ResponseCategory) []string {
	if cs == nil {
		return nil
	}
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = string(c)
	}
	return out
}

func feedCategories(cs []model.ResponseCategory) []feed.Category {
	out := make([]feed.Category, len(cs))
	for i, c := range cs {
		out[i] = feed.Category(c)
	}
	return out
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func webhookEndpoint(ep feed.Endpoint) *model.WebhookEndpoint {
	out := &model.WebhookEndpoint{ID: ep.ID, URL: ep.URL, BatchIntervalSeconds: int(ep.Interval / time.Second),
		Enabled: ep.Enabled(), DisabledAt: timeOrNil(ep.State.DisabledAt), FailingSince: timeOrNil(ep.State.FailingSince),
		Cursor: feed.EncodeCursor(ep.State.Cursor), NextAttemptAt: ep.State.NextAt, CreatedBy: ep.CreatedBy, CreatedAt: ep.CreatedAt,
		UpdatedBy: ep.UpdatedBy, UpdatedAt: ep.UpdatedAt}
	for _, c := range ep.Categories {
		out.Categories = append(out.Categories, model.ResponseCategory(c))
	}
	if ep.State.DisabledReason != "" {
		out.DisabledReason = &ep.State.DisabledReason
	}
	if ep.State.Batch != nil {
		out.PendingKey = &ep.State.Batch.Key
	}
	return out
}

func webhookDelivery(d feed.Delivery) *model.WebhookDelivery {
	out := &model.WebhookDelivery{ID: d.ID, IdempotencyKey: d.Key, Attempt: d.Attempt, At: d.At,
		Outcome: model.WebhookOutcome(d.Outcome), StatusCode: d.StatusCode, DurationMs: int(d.Duration.Milliseconds()), Records: d.Records}
	if d.Error != "" {
		out.Error = &d.Error
	}
	return out
}

// seconds turns an optional batch interval in seconds into a duration; nil stays nil. A count past
// the longest interval is refused here, before it could overflow into another duration, and 0 too:
// it would ask for no batching at all.
func seconds(n *int) (*time.Duration, error) {
	if n == nil {
		return nil, nil
	}
	max := int(feed.MaxInterval / time.Second)
	if *n == 0 {
		return nil, fmt.Errorf("%w: batchIntervalSeconds 0 would send every record alone: give 1-%d, or leave it out for %s",
			followed.ErrBadInput, max, feed.DefaultBatchIn)
	}
	if *n < 0 || *n > max {
		return nil, fmt.Errorf("%w: batchIntervalSeconds %d is outside 1-%d", followed.ErrBadInput, *n, max)
	}
	d := time.Duration(*n) * time.Second
	return &d, nil
}
