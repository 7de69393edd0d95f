package consent

import (
	"fmt"

	"github.com/engage-email/engage/followed"
)

// AttachmentSharing is who may open an attachment shared as a tracked link.
type AttachmentSharing string

// The sharing scopes: anyone with the link, or only the message's recipients (signed in).
const (
	ShareAnyone     AttachmentSharing = "ANYONE"
	ShareRecipients AttachmentSharing = "RECIPIENTS"
)

// Settings are the organisation's engagement settings; only admins change them.
type Settings struct {
	Enabled           bool
	TrackOpens        bool
	TrackLinks        bool
	TrackAttachments  bool
	AttachmentSharing AttachmentSharing
	RetentionDays     int // events older than this are purged; 0 keeps them
	IPStorage         followed.IPStorage
	RequireConsent    bool // follow only recipients with an ALLOW (address or domain)
}

// DefaultSettings are in force until an admin saves settings: engagement on so that a fresh Engage
// works as documented, with client addresses truncated, since the network is all a salesperson needs.
func DefaultSettings() Settings {
	return Settings{Enabled: true, TrackOpens: true, TrackLinks: true, TrackAttachments: true,
		AttachmentSharing: ShareRecipients, IPStorage: followed.IPTruncated}
}

// MaxRetentionDays bounds retention to ten years: beyond that a number is a typo, not a policy.
const MaxRetentionDays = 3650

// Validate checks every field, naming the first bad one.
func (s Settings) Validate() error {
	switch s.AttachmentSharing {
	case ShareAnyone, ShareRecipients:
	default:
		return fmt.Errorf("%w: attachment sharing %q must be ANYONE or RECIPIENTS", followed.ErrBadInput, s.AttachmentSharing)
	}
	switch s.IPStorage {
	case followed.IPFull, followed.IPTruncated, followed.IPNone:
	default:
		return fmt.Errorf("%w: IP storage %q must be FULL, TRUNCATED or NONE", followed.ErrBadInput, s.IPStorage)
	}
	if s.RetentionDays < 0 || s.RetentionDays > MaxRetentionDays {
		return fmt.Errorf("%w: retention of %d days must be between 0 (keep) and %d", followed.ErrBadInput, s.RetentionDays, MaxRetentionDays)
	}
	return nil
}

// SettingsChange is a partial update: nil fields keep their value.
type SettingsChange struct {
	Enabled           *bool
	TrackOpens        *bool
	TrackLinks        *bool
	TrackAttachments  *bool
	AttachmentSharing *AttachmentSharing
	RetentionDays     *int
	IPStorage         *followed.IPStorage
	RequireConsent    *bool
}

// apply returns s with the change made.
func (c SettingsChange) apply(s Settings) Settings {
	set(&s.Enabled, c.Enabled)
	set(&s.TrackOpens, c.TrackOpens)
	set(&s.TrackLinks, c.TrackLinks)
	set(&s.TrackAttachments, c.TrackAttachments)
	set(&s.AttachmentSharing, c.AttachmentSharing)
	set(&s.RetentionDays, c.RetentionDays)
	set(&s.IPStorage, c.IPStorage)
	set(&s.RequireConsent, c.RequireConsent)
	return s
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}
