package m365

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/engage-email/engage/delivery"
)

// Mailer lets delivery send through Microsoft Graph: it implements delivery.Mailer over a Client, turning
// Graph's refusals into the permanent and retryable errors delivery acts on.
type Mailer struct {
	c *Client
}

// NewMailer returns the Microsoft 365 mailer over c.
func NewMailer(c *Client) *Mailer { return &Mailer{c: c} }

var _ delivery.Mailer = (*Mailer)(nil)

func caller(s delivery.Sender) Caller { return Caller{User: s.Mailbox, UserToken: s.UserToken} }

func addresses(as []delivery.Address) []Address {
	out := make([]Address, len(as))
	for i, a := range as {
		out[i] = Address{Email: a.Email, Name: a.Name}
	}
	return out
}

// SendDraft implements delivery.Mailer.
func (m *Mailer) SendDraft(ctx context.Context, from delivery.Sender, draftID string) error {
	if err := m.c.SendDraft(ctx, caller(from), draftID); err != nil {
		return deliveryError(err, false)
	}
	return nil
}

// DraftExists implements delivery.Mailer.
func (m *Mailer) DraftExists(ctx context.Context, from delivery.Sender, draftID string) (bool, error) {
	pending, err := m.c.DraftExists(ctx, caller(from), draftID)
	if err != nil {
		return false, deliveryError(err, true)
	}
	return pending, nil
}

// deliveryError sorts a Graph failure into what delivery does next: retry (throttled, unavailable, a
// network failure) or give up with a reason the salesperson can act on.
func deliveryError(err error, draftLookup bool) error {
	var ge *GraphError
	switch {
	case draftLookup && errors.Is(err, ErrNotFound):
		return fmt.Errorf("%w: %w", delivery.ErrDraftGone, err)
	case errors.Is(err, ErrPermission):
		return &delivery.PermanentError{Err: err, Reason: "Microsoft 365 refused to send from your mailbox: Engage has not " +
			"been granted the Mail.Send permission for it. Ask your Microsoft 365 administrator to grant it, then send again."}
	case errors.Is(err, ErrUnauthorized):
		return &delivery.PermanentError{Err: err, Reason: "Microsoft 365 did not accept Engage's sign-in (your session may " +
			"have expired, or the app's credentials are wrong). Sign in again and send again, or ask your administrator."}
	case errors.Is(err, ErrNotFound):
		return &delivery.PermanentError{Err: err, Reason: "Microsoft 365 has no mailbox Engage can reach for you."}
	case errors.Is(err, ErrThrottled) && errors.As(err, &ge):
		return &delivery.RetryError{After: ge.RetryAfter, Err: err}
	case errors.As(err, &ge) && ge.Status >= 400 && ge.Status < 500:
		reason := "Microsoft 365 refused the message"
		if ge.Message != "" {
			reason += ": " + ge.Message
		}
		return &delivery.PermanentError{Err: err, Reason: reason + " (" + http.StatusText(ge.Status) + ")."}
	case errors.As(err, &ge):
		return &delivery.RetryError{After: ge.RetryAfter, Err: err}
	}
	return err
}
