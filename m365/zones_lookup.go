package m365

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/engage-email/engage/recommend"
)

// Zones reads colleagues' time zones from their mailbox settings, app-only, so the send-time model
// judges slots in a colleague's own day (recommend.MailboxSync drives it).
type Zones struct {
	client *Client
}

var _ recommend.MailboxZones = (*Zones)(nil)

// NewZones reads through client, which needs the MailboxSettings.Read application permission.
func NewZones(client *Client) *Zones { return &Zones{client: client} }

// MailboxZone implements recommend.MailboxZones; an address the tenant has no mailbox for (Graph's
// 404, as for an external address) is reported as recommend.ErrNoMailbox.
func (z *Zones) MailboxZone(ctx context.Context, email string) (*time.Location, error) {
	s, err := z.client.MailboxSettings(ctx, Caller{User: email})
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: %w", recommend.ErrNoMailbox, err)
	}
	if err != nil {
		return nil, fmt.Errorf("mailbox zone of %s: %w", email, err)
	}
	return s.Location, nil
}
