package delivery

import "context"

// Mailer drafts and sends mail in a salesperson's mailbox: Microsoft 365 in a tenant, the local outbox
// otherwise. It reports refusals as *PermanentError or *RetryError; any other error is taken as temporary.
type Mailer interface {
	// CreateDraft saves d in the sender's mailbox and returns the ids it was given.
	CreateDraft(ctx context.Context, from Sender, d Draft) (DraftRef, error)
	// SendDraft sends a saved draft.
	SendDraft(ctx context.Context, from Sender, draftID string) error
	// DraftExists tells whether draftID is still an unsent draft (false: it was sent); ErrDraftGone when
	// it is not in the mailbox at all.
	DraftExists(ctx context.Context, from Sender, draftID string) (bool, error)
}

// Sender is the mailbox a message goes out from and the credential used to reach it.
type Sender struct {
	Mailbox string
	// UserToken is the salesperson's own access token when they asked to send now (on-behalf-of); empty
	// for scheduled and background sends, which use the application's own credential.
	UserToken string
}

// Address is a recipient with their display name.
type Address struct{ Email, Name string }

// Draft is one render ready for the mailbox: its recipients by header, the headers that let
// replies be matched to it, and the files attached to the mail itself.
type Draft struct {
	Subject, HTML string
	To, Cc, Bcc   []Address
	Headers       map[string]string
	Attachments   []File
}

// DraftRef identifies a saved draft and the ids that follow the mail once sent.
type DraftRef struct{ ID, InternetMessageID, ConversationID string }

// Headers Engage puts on every mail it sends, so replies and bounces name the message and render.
const (
	HeaderMessageID = "X-Engage-Message-Id"
	HeaderRender    = "X-Engage-Render"
)
