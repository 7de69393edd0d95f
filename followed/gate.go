package followed

import "context"

// Gate decides who may be followed; Follow asks it on the server so that the add-in's word is never
// trusted. The consent feature implements it.
type Gate interface {
	Verdict(ctx context.Context, recipients []string) (Verdict, error)
}

// Verdict is a Gate's answer for one message's recipients.
type Verdict struct {
	Blocked          []Blocked // recipients who may not be followed, in the order asked
	TrackOpens       bool      // add the pixel
	TrackLinks       bool      // redirect links
	TrackAttachments bool      // share attachments as tracked links (the attachments feature reads it)
}

// Blocked names a recipient who may not be followed and the reason code (e.g. DO_NOT_ALLOW).
type Blocked struct {
	Email  string
	Reason string
}

// ReasonEngagementDisabled is the reason every recipient gets while admins have switched engagement off.
const ReasonEngagementDisabled = "ENGAGEMENT_DISABLED"

// ReasonSuppressedBounce is the reason of an address whose mail bounced: it blocks sending, not only
// following, so delivery looks for it too.
const ReasonSuppressedBounce = "SUPPRESSED_BOUNCE"

// blockedSet indexes a verdict's blocked recipients by address.
func (v Verdict) blockedSet() map[string]string {
	out := make(map[string]string, len(v.Blocked))
	for _, b := range v.Blocked {
		out[b.Email] = b.Reason
	}
	return out
}
