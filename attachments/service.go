package attachments

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/engage-email/engage/auth"
	"github.com/engage-email/engage/consent"
	"github.com/engage-email/engage/followed"
)

// DefaultMaxBytes is the default size limit of one file (150 MB, as Dynamics 365 allows).
const DefaultMaxBytes = 150 << 20

// DefaultMaxMailBytes is the default bound on the files attached to one mail itself, together: the
// largest message Exchange Online can be set to accept is 150 MB as sent, and base64 makes files a
// third larger.
const DefaultMaxMailBytes = 112 << 20

// Messages reads the messages files are added to; followed.Store satisfies it.
type Messages interface {
	Message(ctx context.Context, id string) (followed.Message, error)
}

// Renderer renders a message anew once its shared files changed; followed.Service satisfies it.
type Renderer interface {
	Rerender(ctx context.Context, id string) (followed.Message, error)
}

// Policy is the organisation's word on tracking attachments; consent.Service satisfies it.
type Policy interface {
	Verdict(ctx context.Context, recipients []string) (followed.Verdict, error)
	Settings(ctx context.Context, who auth.Identity) (consent.Settings, error)
}

// Options tune a Service; the zero value suits production.
type Options struct {
	MaxBytes int64 // largest file accepted; default DefaultMaxBytes
	// MaxMailBytes bounds the files a message's mail carries itself (those not shared as links), together:
	// past it the send would fail at Exchange long after the uploads succeeded; default DefaultMaxMailBytes.
	MaxMailBytes int64
	// LinkExpiry makes sharing links expire this long after they are made; zero: they do not.
	LinkExpiry time.Duration
	Now        func() time.Time
	Log        *slog.Logger
}

// Service adds files to messages and answers which are shared and which delivery attaches.
type Service struct {
	store    Store
	messages Messages
	renderer Renderer
	drive    Drive // nil: every file is attached directly
	blobs    *Dir
	policy   Policy // nil: attachments tracked, links for the organisation
	opts     Options
}

// New returns a Service keeping shared files on drive and direct ones in blobs.
func New(store Store, messages Messages, renderer Renderer, drive Drive, blobs *Dir, policy Policy, opts Options) *Service {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.MaxMailBytes <= 0 {
		opts.MaxMailBytes = DefaultMaxMailBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Service{store: store, messages: messages, renderer: renderer, drive: drive, blobs: blobs, policy: policy, opts: opts}
}

// MaxBytes is the size limit of one file, for transports that must bound a request before reading it.
func (s *Service) MaxBytes() int64 { return s.opts.MaxBytes }

// Upload is a file as received: its claimed name and size, and its content.
type Upload struct {
	Name    string
	Size    int64
	Content io.ReadSeeker
}

// own returns the caller's message; anyone else's is followed.ErrNotFound, as it is for followed.
func (s *Service) own(ctx context.Context, who auth.Identity, id string) (followed.Message, error) {
	m, err := s.messages.Message(ctx, id)
	if err != nil {
		return followed.Message{}, fmt.Errorf("attachments: message %s: %w", id, err)
	}
	if m.Owner != who.Email {
		return followed.Message{}, fmt.Errorf("attachments: message %s: %w", id, followed.ErrNotFound)
	}
	return m, nil
}

// Add adds a file to the caller's unsent message. Asked to follow it, and allowed to (the message is
// followed and admins track attachments), it goes to the drive and each tracked render links to it;
// otherwise it is kept for delivery to attach, and Note says why. Anything wrong is refused before
// anything is kept, and a failure halfway removes what was stored.
func (s *Service) Add(ctx context.Context, who auth.Identity, messageID string, up Upload, follow bool) (Attachment, error) {
	if up.Size > s.opts.MaxBytes {
		return Attachment{}, fmt.Errorf("%w: the file is %s, over the limit of %s", ErrTooLarge,
			followed.FileSize(up.Size), followed.FileSize(s.opts.MaxBytes))
	}
	m, err := s.own(ctx, who, messageID)
	if err != nil {
		return Attachment{}, err
	}
	if started, err := s.store.SendStarted(ctx, messageID); err != nil {
		return Attachment{}, fmt.Errorf("attachments: send state of %s: %w", messageID, err)
	} else if started {
		return Attachment{}, fmt.Errorf("attachments: add to %s: %w", messageID, ErrSent)
	}
	name, err := SanitizeName(up.Name)
	if err != nil {
		return Attachment{}, err
	}
	if up.Size <= 0 || up.Content == nil {
		return Attachment{}, fmt.Errorf("%w: the file %q is empty", followed.ErrBadInput, name)
	}
	contentType, err := sniff(up)
	if err != nil {
		return Attachment{}, err
	}
	now := s.opts.Now().UTC().Truncate(time.Millisecond)
	a := Attachment{ID: followed.NewID(now), MessageID: m.ID, Name: name, Size: up.Size, ContentType: contentType,
		Requested: follow, CreatedAt: now}
	owner := Owner{Mailbox: m.Owner, UserToken: who.Token}
	if follow {
		if a.Note, err = s.shareable(ctx, m); err != nil {
			return Attachment{}, err
		}
		a.Shared = a.Note == ""
	}
	if err := s.fitsMail(ctx, m, a); err != nil {
		return Attachment{}, err
	}
	if err := s.keep(ctx, who, owner, m, &a, up); err != nil {
		return Attachment{}, err
	}
	stored, err := s.store.AddAttachment(ctx, a)
	if err == nil {
		if _, err = s.renderer.Rerender(ctx, m.ID); err != nil {
			err = fmt.Errorf("attachments: render %s with %s: %w", m.ID, name, sentAs(err))
			if rerr := s.store.RemoveAttachment(context.WithoutCancel(ctx), stored.ID); rerr != nil {
				// The send started meanwhile: delivery may have attached the file, so it stays.
				s.opts.Log.ErrorContext(ctx, "attachment kept without its render", "attachment", stored.ID, "err", rerr)
				return Attachment{}, err
			}
		}
	}
	if err != nil {
		s.discard(ctx, owner, a)
		if errors.Is(err, ErrSent) || errors.Is(err, followed.ErrNotFound) {
			return Attachment{}, fmt.Errorf("attachments: add to %s: %w", messageID, err)
		}
		return Attachment{}, fmt.Errorf("attachments: add %s to %s: %w", name, messageID, err)
	}
	return stored, nil
}

// fitsMail refuses a when some mail of m would then carry more than MaxMailBytes of files itself: a
// tracked copy carries the files not shared, an untracked copy (a recipient who may not be followed)
// every file.
func (s *Service) fitsMail(ctx context.Context, m followed.Message, a Attachment) error {
	untracked := !m.Following || slices.ContainsFunc(m.Renders, func(r followed.Render) bool { return !r.Tracked })
	if a.Shared && !untracked {
		return nil
	}
	as, err := s.store.Attachments(ctx, m.ID)
	if err != nil {
		return fmt.Errorf("attachments: files of %s: %w", m.ID, err)
	}
	total := a.Size
	for _, x := range as {
		if !x.Shared || untracked {
			total += x.Size
		}
	}
	if total > s.opts.MaxMailBytes {
		return fmt.Errorf("%w: with %s the files attached to the mail itself would total %s, over the limit of %s; "+
			"a followed file goes as a link instead", ErrTooLarge, a.Name, followed.FileSize(total), followed.FileSize(s.opts.MaxMailBytes))
	}
	return nil
}

// sniff reads the type from the file's first bytes and rewinds it.
func sniff(up Upload) (string, error) {
	head := make([]byte, sniffLen)
	n, err := io.ReadFull(up.Content, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("attachments: read the file: %w", err)
	}
	if n == 0 {
		return "", fmt.Errorf("%w: the file is empty", followed.ErrBadInput)
	}
	if _, err := up.Content.Seek(0, io.SeekStart); err != nil {
		return "", fmt.Errorf("attachments: rewind the file: %w", err)
	}
	return Sniff(head[:n]), nil
}

// Why a file asked to be followed is attached directly instead.
const (
	NoteNotFollowed  = "The message is not followed, so the file is attached to the mail itself."
	NoteNotTracked   = "Your organisation does not track attachments, so the file is attached to the mail itself."
	NoteNoDrive      = "No file store is configured for shared attachments, so the file is attached to the mail itself."
	NoteShareRefused = "Your organisation's OneDrive does not allow a link for these recipients, so the file is attached to the mail itself."
)

// shareable says why m's files cannot be shared as tracked links, or "" when they can.
func (s *Service) shareable(ctx context.Context, m followed.Message) (string, error) {
	if s.drive == nil {
		return NoteNoDrive, nil
	}
	if !m.Following {
		return NoteNotFollowed, nil // a recipient who said no gets every file attached, as Dynamics does
	}
	if s.policy == nil {
		return "", nil
	}
	v, err := s.policy.Verdict(ctx, addresses(m.Recipients))
	if err != nil {
		return "", fmt.Errorf("attachments: may %s's files be tracked: %w", m.ID, err)
	}
	if !v.TrackAttachments {
		return NoteNotTracked, nil
	}
	return "", nil
}

// keep stores a's content: on the drive with a sharing link for m's recipients when shared, and in
// blobs for delivery to attach to any mail that does not carry the link.
func (s *Service) keep(ctx context.Context, who auth.Identity, owner Owner, m followed.Message, a *Attachment, up Upload) error {
	if a.Shared {
		link, err := s.link(ctx, who, m)
		if err != nil {
			return err
		}
		folder := "Engage/" + a.CreatedAt.Format("2006-01")
		item, err := s.drive.Upload(ctx, owner, DriveFile{Folder: folder, Name: a.Name, Size: a.Size, ContentType: a.ContentType}, up.Content)
		if err != nil {
			return badSize(fmt.Errorf("attachments: upload %s: %w", a.Name, err))
		}
		a.DriveItem = item.ID
		if s.opts.LinkExpiry > 0 {
			link.Expires = a.CreatedAt.Add(s.opts.LinkExpiry)
		}
		if a.ShareURL, err = s.drive.Share(ctx, owner, item.ID, link); err != nil {
			s.discard(ctx, owner, *a)
			if !errors.Is(err, ErrShareRefused) {
				return fmt.Errorf("attachments: share %s: %w", a.Name, err)
			}
			s.opts.Log.WarnContext(ctx, "sharing link refused; the file goes on the mail itself", "file", a.Name, "err", err)
			a.Shared, a.DriveItem, a.ShareURL, a.Note = false, "", "", NoteShareRefused
			if err := s.fitsMail(ctx, m, *a); err != nil {
				return err
			}
		}
	}
	// A shared file is kept too: a render may turn untracked after the upload (a recipient who says no
	// before the send, and retryFollow), and its mail must then carry the file itself.
	if _, err := up.Content.Seek(0, io.SeekStart); err != nil {
		s.discard(ctx, owner, *a)
		return fmt.Errorf("attachments: rewind %s: %w", a.Name, err)
	}
	key, err := s.blobs.Put(ctx, up.Content, a.Size)
	if err != nil {
		s.discard(ctx, owner, *a)
		return badSize(fmt.Errorf("attachments: keep %s: %w", a.Name, err))
	}
	a.Blob = key
	return nil
}

// badSize marks a file whose content did not match its announced size as the caller's mistake.
func badSize(err error) error {
	if errors.Is(err, errSizeMismatch) {
		return fmt.Errorf("%w: %w", followed.ErrBadInput, err)
	}
	return err
}

// link is the sharing link the organisation chose for m's files: anyone with it, or only m's
// recipients, who are mostly customers outside the organisation, so an organisation link would shut
// them out and let every colleague in.
func (s *Service) link(ctx context.Context, who auth.Identity, m followed.Message) (Link, error) {
	if s.policy == nil {
		return Link{Scope: ScopeOrganization}, nil
	}
	st, err := s.policy.Settings(ctx, who)
	if err != nil {
		return Link{}, fmt.Errorf("attachments: sharing setting: %w", err)
	}
	if st.AttachmentSharing == consent.ShareAnyone {
		return Link{Scope: ScopeAnonymous}, nil
	}
	return Link{Scope: ScopeUsers, Recipients: addresses(m.Recipients)}, nil
}

// addresses lists the recipients' addresses (followed stores them normalised, once each), To, Cc and
// Bcc alike, since each of them gets the link.
func addresses(rs []followed.Recipient) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Email
	}
	return out
}

// discard removes what was stored for a, whatever ctx has become; failures are logged, since the
// caller already has an error to report.
func (s *Service) discard(ctx context.Context, owner Owner, a Attachment) {
	ctx = context.WithoutCancel(ctx)
	if a.DriveItem != "" && s.drive != nil {
		if err := s.drive.Delete(ctx, owner, a.DriveItem); err != nil {
			s.opts.Log.WarnContext(ctx, "shared file left on the drive", "item", a.DriveItem, "err", err)
		}
	}
	if a.Blob != "" {
		if err := s.blobs.Delete(a.Blob); err != nil {
			s.opts.Log.WarnContext(ctx, "attachment copy left behind", "blob", a.Blob, "err", err)
		}
	}
}

// Remove takes a file off the caller's unsent message and deletes what was stored of it.
func (s *Service) Remove(ctx context.Context, who auth.Identity, id string) (Attachment, error) {
	a, err := s.store.Attachment(ctx, id)
	if err != nil {
		return Attachment{}, fmt.Errorf("attachments: attachment %s: %w", id, err)
	}
	m, err := s.own(ctx, who, a.MessageID)
	if err != nil {
		return Attachment{}, err
	}
	if err := s.store.RemoveAttachment(ctx, id); err != nil {
		return Attachment{}, fmt.Errorf("attachments: remove %s: %w", id, err)
	}
	if _, err := s.renderer.Rerender(ctx, m.ID); err != nil {
		// The renders still list the file (and a send that started meanwhile carries its link): put it
		// back, so that the list says so and a retry can remove it; the file stays where it is.
		if rerr := s.store.RestoreAttachment(context.WithoutCancel(ctx), a); rerr != nil {
			s.opts.Log.ErrorContext(ctx, "attachment removed while its renders still list it", "attachment", id, "err", rerr)
		}
		return Attachment{}, fmt.Errorf("attachments: render %s without %s: %w", m.ID, a.Name, sentAs(err))
	}
	s.discard(ctx, Owner{Mailbox: m.Owner, UserToken: who.Token}, a)
	return a, nil
}

// sentAs words a render refused because the send started as this package's ErrSent.
func sentAs(err error) error {
	if errors.Is(err, followed.ErrSendStarted) {
		return ErrSent
	}
	return err
}

// List returns the attachments of a message the caller may see (the resolver checked), by index.
func (s *Service) List(ctx context.Context, messageID string) ([]Attachment, error) {
	as, err := s.store.Attachments(ctx, messageID)
	if err != nil {
		return nil, fmt.Errorf("attachments: list %s: %w", messageID, err)
	}
	return as, nil
}

// SharedFiles implements followed.FileSource.
func (s *Service) SharedFiles(ctx context.Context, messageID string) ([]followed.SharedFile, error) {
	as, err := s.List(ctx, messageID)
	if err != nil {
		return nil, err
	}
	var out []followed.SharedFile
	for _, a := range as {
		if a.Shared {
			out = append(out, followed.SharedFile{Index: a.Index, Name: a.Name, Size: a.Size, ContentType: a.ContentType, URL: a.ShareURL})
		}
	}
	return out, nil
}

// Direct lists the files delivery attaches to the mail of one render: the unfollowed ones for a
// tracked render, every file for an untracked copy (a recipient who may not be followed gets the
// files themselves, as in Dynamics). Content opens each.
func (s *Service) Direct(ctx context.Context, messageID string, tracked bool) ([]Attachment, error) {
	as, err := s.List(ctx, messageID)
	if err != nil {
		return nil, err
	}
	var out []Attachment
	for _, a := range as {
		if a.Blob != "" && (!a.Shared || !tracked) {
			out = append(out, a)
		}
	}
	return out, nil
}

// Content opens the local copy of a direct file; the caller closes it.
func (s *Service) Content(_ context.Context, a Attachment) (io.ReadCloser, error) {
	if a.Blob == "" {
		return nil, fmt.Errorf("attachments: %s has no local copy: %w", a.ID, followed.ErrNotFound)
	}
	f, err := s.blobs.Open(a.Blob)
	if err != nil {
		return nil, fmt.Errorf("attachments: open %s: %w", a.ID, err)
	}
	return f, nil
}
