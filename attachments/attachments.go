// Package attachments adds files to followed messages: a followed file goes to the sender's OneDrive
// (or, in local mode, Engage's own file store) and the mail carries a tracked link to it; any other file
// is kept until delivery attaches it to the mail itself.
package attachments

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/engage-email/engage/followed"
)

// ErrSent means the message's send has started (or is over), so its attachments can no longer change.
var ErrSent = fmt.Errorf("%w: the message was already sent or is being sent: its attachments can no longer change",
	followed.ErrBadInput)

// ErrShareRefused means the drive's policy forbids the link asked for (a tenant that does not share
// outside the organisation, asked for a link naming customers): the file is attached to the mail instead.
var ErrShareRefused = errors.New("attachments: the drive refused the sharing link")

// ErrTooLarge means a file is over the size limit; it is refused before anything of it is kept.
var ErrTooLarge = errors.New("attachments: file too large")

// Attachment is a file added to a message, shared as a tracked link or attached directly.
type Attachment struct {
	ID        string
	MessageID string
	// Index numbers the message's attachments in the order added; tracking tokens carry it.
	Index       int
	Name        string // sanitised
	Size        int64
	ContentType string // sniffed from the content, never the uploader's word
	Requested   bool   // the salesperson asked for it to be followed
	Shared      bool   // stored on the Drive and sent as a tracked link
	Note        string // why a file asked to be followed is attached directly
	DriveItem   string // the Drive's id of the shared file
	ShareURL    string // the sharing link the tracked link redirects to
	// Blob is the key of the local copy delivery attaches to mails without the link (every file added
	// since shared files kept one too; "" for a shared file added before).
	Blob      string
	CreatedAt time.Time
}

// Store is what attachments needs from a backend. Every method is atomic.
type Store interface {
	// AddAttachment stores a with the next index of its message and returns it as stored; ErrSent when
	// the message's send has started, followed.ErrNotFound when the message does not exist.
	AddAttachment(ctx context.Context, a Attachment) (Attachment, error)
	// Attachment returns one attachment, or followed.ErrNotFound.
	Attachment(ctx context.Context, id string) (Attachment, error)
	// Attachments lists a message's attachments by index.
	Attachments(ctx context.Context, messageID string) ([]Attachment, error)
	// RemoveAttachment deletes an attachment; ErrSent when its message's send has started,
	// followed.ErrNotFound when there is none.
	RemoveAttachment(ctx context.Context, id string) error
	// RestoreAttachment puts back, as it was (its id and index), an attachment whose removal could not
	// be carried through to the renders, whatever the send state: the renders still list it.
	RestoreAttachment(ctx context.Context, a Attachment) error
	// SendStarted tells whether the message is being sent or was sent (even in part).
	SendStarted(ctx context.Context, messageID string) (bool, error)
}

// Owner is the person whose drive a file goes to, and the credential that reaches it.
type Owner struct {
	Mailbox string
	// UserToken is the salesperson's own access token (on-behalf-of); empty uses the application's.
	UserToken string
}

// Scope is who may open a sharing link.
type Scope string

// The sharing scopes Engage asks for, named as OneDrive names them.
const (
	ScopeOrganization Scope = "organization" // people signed in to the sender's organisation
	ScopeAnonymous    Scope = "anonymous"    // anyone holding the link
	// ScopeUsers lets in only the people named in Link.Recipients, inside the organisation or outside it.
	ScopeUsers Scope = "users"
)

// Link is the sharing link asked of a drive, gathered in one value so that a scope travels with the
// people it names.
type Link struct {
	Scope Scope
	// Recipients are the addresses a ScopeUsers link lets in (at least one); other scopes ignore them.
	Recipients []string
	Expires    time.Time // zero: the link does not expire
}

// DriveFile describes a file to store in a drive.
type DriveFile struct {
	Folder      string // slash-separated path under the drive's root, e.g. "Engage/2026-11"
	Name        string // sanitised; renamed by the drive on conflict, never overwritten
	Size        int64
	ContentType string
}

// DriveItem is a stored file as the drive named it.
type DriveItem struct{ ID, Name string }

// Drive keeps shared files: the sender's OneDrive for Business with a tenant, a local store otherwise.
type Drive interface {
	// Upload stores content (exactly f.Size bytes) as f.Name in f.Folder, renaming on a name conflict.
	// An upload that fails leaves nothing behind.
	Upload(ctx context.Context, owner Owner, f DriveFile, content io.ReadSeeker) (DriveItem, error)
	// Share creates a view-only sharing link to an item (ErrShareRefused when the drive's policy forbids it), open to whom link says until link.Expires.
	Share(ctx context.Context, owner Owner, itemID string, link Link) (string, error)
	// Delete removes an item; an item already gone is not an error.
	Delete(ctx context.Context, owner Owner, itemID string) error
}
