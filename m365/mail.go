package m365

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/users"
)

// maxInlineAttachments is Graph's limit on attachments sent within the message body (3 MB in total);
// larger files go to OneDrive as links.
const maxInlineAttachments = 3 << 20

// Address is a mailbox address with its display name.
type Address struct{ Email, Name string }

// FileAttachment is a small file carried inside the draft; with a ContentID it is an inline image.
type FileAttachment struct {
	Name, ContentType string
	ContentID         string // referenced from the HTML as cid:<ContentID>; empty for a plain attachment
	Content           []byte
}

// Draft is a message as Engage rendered it, ready to be saved in the sender's Drafts folder.
type Draft struct {
	Subject, HTML string
	To, Cc, Bcc   []Address
	Attachments   []FileAttachment
	// Headers are custom internet headers (names must start with X-), e.g. Engage's message id, which
	// come back on replies and let us match them.
	Headers map[string]string
}

// DraftRef identifies a saved draft: its Graph id (immutable), and the ids that follow the mail once sent.
type DraftRef struct{ ID, InternetMessageID, ConversationID string }

// CreateDraft saves d in the caller's mailbox so it can be sent now or by a scheduled job later.
func (c *Client) CreateDraft(ctx context.Context, caller Caller, d Draft) (DraftRef, error) {
	msg, err := draftMessage(d)
	if err != nil {
		return DraftRef{}, err
	}
	u, err := c.user(caller)
	if err != nil {
		return DraftRef{}, err
	}
	created, err := u.Messages().Post(ctx, msg, &users.ItemMessagesRequestBuilderPostRequestConfiguration{Headers: immutableIDs()})
	if err != nil {
		return DraftRef{}, graphErr("create draft for "+caller.User, err)
	}
	ref := DraftRef{
		ID:                deref(created.GetId()),
		InternetMessageID: deref(created.GetInternetMessageId()),
		ConversationID:    deref(created.GetConversationId()),
	}
	if ref.ID == "" {
		return DraftRef{}, fmt.Errorf("m365: create draft for %s: graph returned no message id", caller.User)
	}
	return ref, nil
}

// draftMessage builds Graph's message resource, refusing what Graph would refuse.
func draftMessage(d Draft) (models.Messageable, error) {
	if len(d.To)+len(d.Cc)+len(d.Bcc) == 0 {
		return nil, errors.New("m365: draft has no recipient")
	}
	msg := models.NewMessage()
	msg.SetSubject(&d.Subject)
	body := models.NewItemBody()
	html := models.HTML_BODYTYPE
	body.SetContentType(&html)
	body.SetContent(&d.HTML)
	msg.SetBody(body)
	for _, set := range []struct {
		addrs []Address
		put   func([]models.Recipientable)
	}{{d.To, msg.SetToRecipients}, {d.Cc, msg.SetCcRecipients}, {d.Bcc, msg.SetBccRecipients}} {
		if len(set.addrs) == 0 {
			continue
		}
		rs, err := recipients(set.addrs)
		if err != nil {
			return nil, err
		}
		set.put(rs)
	}
	if len(d.Headers) > 0 {
		hs := make([]models.InternetMessageHeaderable, 0, len(d.Headers))
		for _, name := range slices.Sorted(maps.Keys(d.Headers)) {
			if !strings.HasPrefix(strings.ToLower(name), "x-") {
				return nil, fmt.Errorf("m365: draft header %q: custom header names must start with X-", name)
			}
			h := models.NewInternetMessageHeader()
			n, v := name, d.Headers[name]
			h.SetName(&n)
			h.SetValue(&v)
			hs = append(hs, h)
		}
		msg.SetInternetMessageHeaders(hs)
	}
	if len(d.Attachments) > 0 {
		as := make([]models.Attachmentable, 0, len(d.Attachments))
		total := 0
		for _, a := range d.Attachments {
			total += len(a.Content)
			if a.Name == "" {
				return nil, errors.New("m365: draft attachment has no name")
			}
			fa := models.NewFileAttachment()
			name, ct := a.Name, a.ContentType
			fa.SetName(&name)
			if ct != "" {
				fa.SetContentType(&ct)
			}
			fa.SetContentBytes(a.Content)
			if a.ContentID != "" {
				cid, inline := a.ContentID, true
				fa.SetContentId(&cid)
				fa.SetIsInline(&inline)
			}
			as = append(as, fa)
		}
		if total > maxInlineAttachments {
			return nil, fmt.Errorf("m365: draft attachments total %d bytes, over Graph's %d-byte limit for inline attachments", total, maxInlineAttachments)
		}
		msg.SetAttachments(as)
	}
	return msg, nil
}

func recipients(addrs []Address) ([]models.Recipientable, error) {
	out := make([]models.Recipientable, 0, len(addrs))
	for _, a := range addrs {
		if !strings.Contains(a.Email, "@") {
			return nil, fmt.Errorf("m365: recipient %q is not an email address", a.Email)
		}
		ea := models.NewEmailAddress()
		email := a.Email
		ea.SetAddress(&email)
		if a.Name != "" {
			name := a.Name
			ea.SetName(&name)
		}
		r := models.NewRecipient()
		r.SetEmailAddress(ea)
		out = append(out, r)
	}
	return out, nil
}

// SendDraft sends a saved draft; Exchange moves it to Sent Items, keeping its immutable id.
func (c *Client) SendDraft(ctx context.Context, caller Caller, id string) error {
	if id == "" {
		return errors.New("m365: send draft: empty message id")
	}
	u, err := c.user(caller)
	if err != nil {
		return err
	}
	err = u.Messages().ByMessageId(id).Send().Post(ctx, &users.ItemMessagesItemSendRequestBuilderPostRequestConfiguration{Headers: immutableIDs()})
	if err != nil {
		return graphErr("send draft "+id+" for "+caller.User, err)
	}
	return nil
}

// DraftExists tells whether message id is still an unsent draft, so a job that crashed between drafting
// and sending can tell whether to send again (true) or not (false: it was sent). ErrNotFound means the
// draft is gone (deleted by the user).
func (c *Client) DraftExists(ctx context.Context, caller Caller, id string) (bool, error) {
	if id == "" {
		return false, errors.New("m365: draft exists: empty message id")
	}
	u, err := c.user(caller)
	if err != nil {
		return false, err
	}
	msg, err := u.Messages().ByMessageId(id).Get(ctx, &users.ItemMessagesMessageItemRequestBuilderGetRequestConfiguration{
		Headers:         immutableIDs(),
		QueryParameters: &users.ItemMessagesMessageItemRequestBuilderGetQueryParameters{Select: []string{"isDraft"}},
	})
	if err != nil {
		return false, graphErr("read message "+id+" for "+caller.User, err)
	}
	isDraft := msg.GetIsDraft()
	if isDraft == nil {
		return false, fmt.Errorf("m365: read message %s for %s: graph returned no isDraft", id, caller.User)
	}
	return *isDraft, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
