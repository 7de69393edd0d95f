package followed

import (
	"context"
	"fmt"
	"html"
	"strings"
)

// SharedFile is an attachment shared as a link: each tracked render lists it in a block at the end
// of the message, and its link goes through Engage so that an open is recorded.
type SharedFile struct {
	Index       int // the attachment's index in its message, carried by its tracking tokens
	Name        string
	Size        int64
	ContentType string
	URL         string // where the link leads once recorded: a sharing link, or Engage's own file URL
}

// FileSource lists the files of a message shared as links; the attachments feature implements it.
type FileSource interface {
	SharedFiles(ctx context.Context, messageID string) ([]SharedFile, error)
}

// SetFiles makes every render list the files src shares; call it before serving.
func (s *Service) SetFiles(src FileSource) { s.files = src }

// Rerender renders a stored message anew (after its shared files changed), asking the gate again
// when it is followed, and stores the renders; counters are kept.
func (s *Service) Rerender(ctx context.Context, id string) (Message, error) {
	m, err := s.store.Message(ctx, id)
	if err != nil {
		return Message{}, fmt.Errorf("followed: rerender %s: %w", id, err)
	}
	m.Renders, m.Links, m.Warnings = nil, nil, nil
	if err := s.decide(ctx, &m); err != nil {
		return Message{}, err
	}
	if err := s.store.UpdateRenders(ctx, m); err != nil {
		return Message{}, fmt.Errorf("followed: rerender %s: %w", id, err)
	}
	return m, nil
}

// shareFiles adds the block of shared files to every tracked render of m; links are tracked when v
// allows it, and lead straight to the file otherwise.
func (s *Service) shareFiles(ctx context.Context, m *Message, v Verdict) error {
	if s.files == nil || !m.Following {
		return nil
	}
	files, err := s.files.SharedFiles(ctx, m.ID)
	if err != nil {
		return fmt.Errorf("followed: shared files of %s: %w", m.ID, err)
	}
	if len(files) == 0 {
		return nil
	}
	for i := range m.Renders {
		r := &m.Renders[i]
		if !r.Tracked {
			continue // an untracked copy carries the files themselves (delivery attaches them)
		}
		r.HTML = insertBeforeBodyEnd(r.HTML, s.filesBlock(m.ID, r.Recipient, files, v.TrackAttachments))
	}
	return nil
}

// filesBlock is the HTML listing files, one row each: name (the link), size and type.
func (s *Service) filesBlock(messageID string, recipient int, files []SharedFile, track bool) string {
	var b strings.Builder
	b.WriteString(`<table role="presentation" cellpadding="0" cellspacing="0" border="0" data-engage-attachments="" ` +
		`style="margin:16px 0 0 0;border-collapse:collapse;font-family:Segoe UI,Arial,sans-serif;font-size:13px">`)
	for _, f := range files {
		target := f.URL
		if track {
			if u, err := s.trackingURL("a", Token{Kind: TokenAttachment, MessageID: messageID, Recipient: recipient,
				Link: f.Index, URL: f.URL}); err == nil {
				target = u
			}
		}
		b.WriteString(`<tr><td style="padding:6px 10px;border:1px solid #d0d0d0">&#128206; <a href="`)
		b.WriteString(html.EscapeString(target))
		b.WriteString(`">`)
		b.WriteString(html.EscapeString(f.Name))
		b.WriteString(`</a> <span style="color:#666666">(`)
		b.WriteString(html.EscapeString(FileSize(f.Size) + ", " + FileType(f.Name, f.ContentType)))
		b.WriteString(`)</span></td></tr>`)
	}
	b.WriteString(`</table>`)
	return b.String()
}

// insertBeforeBodyEnd puts block just before the last </body> (any case), or at the end without one.
func insertBeforeBodyEnd(doc, block string) string {
	i := strings.LastIndex(strings.ToLower(doc), "</body")
	if i < 0 {
		return doc + block
	}
	return doc[:i] + block + doc[i:]
}

// FileSize words a byte count as people read it (binary multiples, one decimal), e.g. "2.5 MB".
func FileSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for v := n / unit; v >= unit && exp < 4; v /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "KMGTP"[exp])
}

// FileType names a file's type for the reader: the extension's, else the media type's subtype, upper-cased.
func FileType(name, contentType string) string {
	if i := strings.LastIndexByte(name, '.'); i >= 0 && i < len(name)-1 && len(name)-i <= 6 {
		return strings.ToUpper(name[i+1:])
	}
	ct, _, _ := strings.Cut(contentType, ";")
	if _, sub, ok := strings.Cut(strings.TrimSpace(ct), "/"); ok && sub != "" {
		return strings.ToUpper(sub)
	}
	return "FILE"
}
