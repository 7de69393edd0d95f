package delivery

import (
	"context"
	"fmt"
	"io"

	"github.com/engage-email/engage/attachments"
)

// File is an attachment put on the mail itself rather than shared as a tracked link: an unfollowed
// file, or every file of a copy whose recipient may not be followed.
type File struct {
	AttachmentID      string
	Name, ContentType string
	Size              int64
	// Open streams the content; the mailer closes it. A mailer may open a file more than once.
	Open func(ctx context.Context) (io.ReadCloser, error)
}

// Files is where delivery finds the files each render carries; attachments.Service satisfies it.
type Files interface {
	// Direct lists the files attached to the mail of a render: the unfollowed ones for a tracked
	// render, every file for an untracked copy.
	Direct(ctx context.Context, messageID string, tracked bool) ([]attachments.Attachment, error)
	// Content opens a listed file.
	Content(ctx context.Context, a attachments.Attachment) (io.ReadCloser, error)
}

var _ Files = (*attachments.Service)(nil)

// directFiles lists the files one render's mail carries, none when no file source is configured.
func directFiles(ctx context.Context, files Files, messageID string, tracked bool) ([]File, error) {
	if files == nil {
		return nil, nil
	}
	as, err := files.Direct(ctx, messageID, tracked)
	if err != nil {
		return nil, fmt.Errorf("delivery: files of %s: %w", messageID, err)
	}
	out := make([]File, len(as))
	for i, a := range as {
		out[i] = File{AttachmentID: a.ID, Name: a.Name, ContentType: a.ContentType, Size: a.Size,
			Open: func(ctx context.Context) (io.ReadCloser, error) { return files.Content(ctx, a) }}
	}
	return out, nil
}
