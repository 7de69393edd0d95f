package graph

import (
	"fmt"

	"github.com/engage-email/engage/attachments"
	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/graph/model"
)

// CodePayloadTooLarge is the code of an upload over the size limit, the GraphQL face of HTTP 413.
const CodePayloadTooLarge = "PAYLOAD_TOO_LARGE"

func attachment(a attachments.Attachment) *model.Attachment {
	return &model.Attachment{ID: a.ID, MessageID: a.MessageID, Index: a.Index, Name: a.Name, Size: int(a.Size),
		ContentType: a.ContentType, Followed: a.Shared, FollowRequested: a.Requested, Note: ptrIf(a.Note), CreatedAt: a.CreatedAt}
}

// attachmentService is the attachments feature, or an error when this Engage was built without it.
func (r *Resolver) attachmentService() (*attachments.Service, error) {
	if r.Attachments == nil {
		return nil, fmt.Errorf("%w: attachments are not configured on this server", followed.ErrBadInput)
	}
	return r.Attachments, nil
}
