package graph

import (
	"context"

	"github.com/engage-email/engage/alerts"
	"github.com/engage-email/engage/graph/model"
)

// CloseResync is the websocket close code that tells an alerts subscriber it fell behind and must
// resubscribe with `since` set to the cursor of the last alert it received.
const CloseResync = 4409

type socketCloserKey struct{}

// WithSocketCloser lets the transport hand subscriptions a way to close their websocket with a code,
// since a subscriber that fell behind must hear "resync", not a silent end.
func WithSocketCloser(ctx context.Context, close func(code int, reason string)) context.Context {
	return context.WithValue(ctx, socketCloserKey{}, close)
}

func socketCloser(ctx context.Context) func(code int, reason string) {
	c, _ := ctx.Value(socketCloserKey{}).(func(code int, reason string))
	return c
}

func alertModel(a alerts.Alert) *model.Alert {
	out := &model.Alert{ID: a.ID, Kind: model.AlertKind(a.Kind), At: a.At, Message: &model.AlertMessage{ID: a.MessageID,
		Subject: a.Subject}, Recipient: ptrIf(a.Recipient), URL: ptrIf(a.URL), ReminderID: ptrIf(a.Reminder),
		Withdraws: ptrIf(a.Withdraws), MachineReason: ptrIf(a.Machine), Read: !a.ReadAt.IsZero(), Cursor: a.Cursor()}
	if a.Device != (alerts.Alert{}).Device {
		out.Device = &model.Device{Type: model.DeviceType(a.Device.Type), Os: a.Device.OS, Client: a.Device.Client}
		if out.Device.Type == "" {
			out.Device.Type = model.DeviceTypeUnknown
		}
	}
	if a.Condition != "" {
		k := model.ReminderKind(a.Condition)
		out.ReminderKind = &k
	}
	return out
}

func reminderModel(r alerts.Reminder) *model.Reminder {
	return &model.Reminder{ID: r.ID, Message: &model.AlertMessage{ID: r.MessageID, Subject: r.Subject},
		Kind: model.ReminderKind(r.Condition), At: r.DueAt, CreatedAt: r.CreatedAt, State: model.ReminderState(r.State),
		Reason: ptrIf(r.Reason), DoneAt: timePtr(r.DoneAt)}
}

func preferencesModel(p alerts.Preferences) *model.AlertPreferences {
	return &model.AlertPreferences{FirstOpen: p.FirstOpen, ReplyReceived: p.ReplyReceived, LinkClicked: p.LinkClicked,
		AttachmentOpened: p.AttachmentOpened}
}

func applyPreferences(p alerts.Preferences, in model.AlertPreferencesInput) alerts.Preferences {
	for _, f := range []struct {
		in  *bool
		out *bool
	}{{in.FirstOpen, &p.FirstOpen}, {in.ReplyReceived, &p.ReplyReceived}, {in.LinkClicked, &p.LinkClicked},
		{in.AttachmentOpened, &p.AttachmentOpened}} {
		if f.in != nil {
			*f.out = *f.in
		}
	}
	return p
}
