package feed

import (
	"context"
	"fmt"

	"github.com/engage-email/engage/auth"
	"github.com/engage-email/engage/consent"
	"github.com/engage-email/engage/followed"
)

// Messages reads followed messages; followed.Store satisfies it.
type Messages interface {
	Message(ctx context.Context, id string) (followed.Message, error)
}

// EventRecorder stores an event durably; followed.Recorder satisfies it.
type EventRecorder interface {
	Record(ctx context.Context, ev followed.Event) error
}

// PreferenceSetter records a Follow Email preference; consent.Service satisfies it.
type PreferenceSetter interface {
	SetPreference(ctx context.Context, who auth.Identity, target string, p consent.Preference, note string) (consent.Entry, error)
}

// OptOuts carries out a recipient's opt-out: their address is no longer followed, and the CRM hears
// of it as an UNSUBSCRIPTION.
type OptOuts struct {
	messages Messages
	events   EventRecorder
	prefs    PreferenceSetter
}

// NewOptOuts returns the opt-out handler.
func NewOptOuts(messages Messages, events EventRecorder, prefs PreferenceSetter) *OptOuts {
	return &OptOuts{messages: messages, events: events, prefs: prefs}
}

// OptOut acts on a verified opt-out token; ev is the hit as the server turned it into an event (time,
// client, device). The preference is set first, since it is what protects the recipient; the event
// has an id fixed per message and recipient, so using the link twice records one UNSUBSCRIPTION.
// It returns the address that opted out.
func (o *OptOuts) OptOut(ctx context.Context, tok followed.Token, ev followed.Event) (string, error) {
	if tok.Kind != followed.TokenOptOut || tok.Recipient < 0 {
		return "", fmt.Errorf("%w: not an opt-out link of one recipient", followed.ErrBadInput)
	}
	m, err := o.messages.Message(ctx, tok.MessageID)
	if err != nil {
		return "", fmt.Errorf("feed: opt-out from message %s: %w", tok.MessageID, err)
	}
	email := m.RecipientEmail(tok.Recipient)
	if email == "" {
		return "", fmt.Errorf("feed: opt-out from message %s: recipient %d: %w", tok.MessageID, tok.Recipient, followed.ErrNotFound)
	}
	// The signed link proves the recipient holds the address, which is all an admin's choice would
	// establish; the history names the recipient as the one who chose.
	self := auth.Identity{Email: email, Admin: true}
	if _, err := o.prefs.SetPreference(ctx, self, email, consent.DoNotAllow,
		"the recipient opted out with the link in message "+tok.MessageID); err != nil {
		return "", fmt.Errorf("feed: opt-out of %s: %w", email, err)
	}
	ev.ID = "optout-" + tok.MessageID + "-" + fmt.Sprint(tok.Recipient)
	ev.MessageID, ev.Recipient, ev.Kind = tok.MessageID, tok.Recipient, followed.Unsubscribed
	ev.Link, ev.URL, ev.Machine, ev.Reason, ev.Rule = -1, "", false, "", ""
	if err := o.events.Record(ctx, ev); err != nil {
		return "", fmt.Errorf("feed: record opt-out of %s: %w", email, err)
	}
	return email, nil
}
