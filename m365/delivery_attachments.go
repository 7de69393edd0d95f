package m365

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/engage-email/engage/delivery"
)

// Files go on a draft three ways, as Graph allows: those under maxInlineAttachments (3 MB, together,
// less what the body takes of the 4 MB a request may carry) inside the create-draft request, further small ones by POST .../attachments, and any of 3 MB or more
// through an attachment upload session, streamed in SliceSize ranges so memory stays bounded.

// CreateDraft implements delivery.Mailer. A draft whose files could not all be attached is deleted, so
// a retry drafts afresh instead of leaving a half-built mail in the Drafts folder.
func (m *Mailer) CreateDraft(ctx context.Context, from delivery.Sender, d delivery.Draft) (delivery.DraftRef, error) {
	inline, later, err := splitFiles(ctx, d.Attachments, inlineRoom(d.HTML))
	if err != nil {
		return delivery.DraftRef{}, err
	}
	who := caller(from)
	ref, err := m.c.CreateDraft(ctx, who, Draft{Subject: d.Subject, HTML: d.HTML, To: addresses(d.To),
		Cc: addresses(d.Cc), Bcc: addresses(d.Bcc), Headers: d.Headers, Attachments: inline})
	if err != nil {
		return delivery.DraftRef{}, deliveryError(err, false)
	}
	for _, f := range later {
		if err := m.attach(ctx, who, ref.ID, f); err != nil {
			if derr := m.c.DeleteMessage(context.WithoutCancel(ctx), who, ref.ID); derr != nil {
				err = fmt.Errorf("%w (and the draft was left behind: %w)", err, derr)
			}
			return delivery.DraftRef{}, deliveryError(err, false)
		}
	}
	return delivery.DraftRef{ID: ref.ID, InternetMessageID: ref.InternetMessageID, ConversationID: ref.ConversationID}, nil
}

// requestLimit is the largest request Graph takes (4 MB), JSON and base64 included.
const requestLimit = 4 << 20

// requestSlack leaves room in a create-draft request for what is not the body or the files' content:
// subject, addresses, headers, file names and the JSON around them.
const requestSlack = 64 << 10

// inlineRoom is how many bytes of files fit inside a create-draft request beside html, once base64
// makes them a third larger and JSON escapes the body (as the SDK writes it: quotes, backslashes and
// control characters, not HTML).
func inlineRoom(html string) int64 {
	var n countingWriter
	enc := json.NewEncoder(&n)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(html) // a string always encodes
	room := max(int64(requestLimit-requestSlack)-int64(n), 0) / 4 * 3
	return min(room, maxInlineAttachments)
}

// countingWriter counts what is written to it.
type countingWriter int

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}

// splitFiles reads the small files that fit, together, in room bytes inside the create-draft request,
// and leaves the others to be attached once the draft exists.
func splitFiles(ctx context.Context, files []delivery.File, room int64) ([]FileAttachment, []delivery.File, error) {
	var inline []FileAttachment
	var later []delivery.File
	var total int64
	for _, f := range files {
		if f.Size <= 0 || f.Size >= maxInlineAttachments || total+f.Size > room {
			later = append(later, f)
			continue
		}
		content, err := readFile(ctx, f)
		if err != nil {
			return nil, nil, err
		}
		total += f.Size
		inline = append(inline, FileAttachment{Name: f.Name, ContentType: f.ContentType, Content: content})
	}
	return inline, later, nil
}

// readFile reads a small file whole, refusing one whose content is not its announced size.
func readFile(ctx context.Context, f delivery.File) ([]byte, error) {
	rc, err := open(ctx, f)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, f.Size+1))
	if err != nil {
		return nil, fmt.Errorf("m365: read attachment %s: %w", f.Name, err)
	}
	if int64(len(b)) != f.Size {
		return nil, sizeMismatch(f, int64(len(b)))
	}
	return b, nil
}

func open(ctx context.Context, f delivery.File) (io.ReadCloser, error) {
	if f.Open == nil || f.Name == "" {
		return nil, &delivery.PermanentError{Reason: "An attachment of the message has no content.",
			Err: fmt.Errorf("m365: attachment %q cannot be opened", f.Name)}
	}
	rc, err := f.Open(ctx)
	if err != nil {
		return nil, fmt.Errorf("m365: open attachment %s: %w", f.Name, err)
	}
	return rc, nil
}

func sizeMismatch(f delivery.File, got int64) error {
	return &delivery.PermanentError{Reason: "The attachment " + f.Name + " changed since it was added; add it again.",
		Err: fmt.Errorf("m365: attachment %s holds %d+ bytes, not the %d recorded", f.Name, got, f.Size)}
}

// attach adds one file to a saved draft: by POST when small, else through an upload session.
func (m *Mailer) attach(ctx context.Context, who Caller, draftID string, f delivery.File) error {
	if f.Size > 0 && f.Size < maxInlineAttachments {
		content, err := readFile(ctx, f)
		if err != nil {
			return err
		}
		return m.c.AddAttachment(ctx, who, draftID, FileAttachment{Name: f.Name, ContentType: f.ContentType, Content: content})
	}
	rc, err := open(ctx, f)
	if err != nil {
		return err
	}
	defer rc.Close()
	return m.c.UploadAttachment(ctx, who, draftID, f.Name, f.ContentType, f.Size, rc)
}

// AddAttachment attaches a file under 3 MB to the caller's draft id in one request.
func (c *Client) AddAttachment(ctx context.Context, caller Caller, id string, a FileAttachment) error {
	if len(a.Content) >= maxInlineAttachments || a.Name == "" {
		return fmt.Errorf("m365: attach %q: a name and under %d bytes are required", a.Name, maxInlineAttachments)
	}
	body := map[string]any{"@odata.type": "#microsoft.graph.fileAttachment", "name": a.Name,
		"contentBytes": base64.StdEncoding.EncodeToString(a.Content)}
	if a.ContentType != "" {
		body["contentType"] = a.ContentType
	}
	return c.messageCall(ctx, "attach "+a.Name+" to "+id+" for "+caller.User, caller, http.MethodPost,
		c.messageURL(caller, id)+"/attachments", body, nil)
}

// UploadAttachment streams size bytes of content to the caller's draft id through an attachment upload
// session, SliceSize bytes per request (whole multiples of 320 KiB but the last); a session that fails
// is cancelled.
func (c *Client) UploadAttachment(ctx context.Context, caller Caller, id, name, contentType string, size int64, content io.Reader) error {
	if size <= 0 || name == "" {
		return errors.New("m365: upload attachment: a name and a positive size are required")
	}
	item := map[string]any{"attachmentType": "file", "name": name, "size": size}
	if contentType != "" {
		item["contentType"] = contentType
	}
	var session struct {
		UploadURL string `json:"uploadUrl"`
	}
	op := "create attachment upload session for " + name + " on " + id
	if err := c.messageCall(ctx, op, caller, http.MethodPost, c.messageURL(caller, id)+"/attachments/createUploadSession",
		map[string]any{"AttachmentItem": item}, &session); err != nil {
		return err
	}
	if session.UploadURL == "" {
		return fmt.Errorf("m365: %s: graph returned no upload URL", op)
	}
	if err := c.uploadRanges(ctx, session.UploadURL, size, content); err != nil {
		c.cancelAttachmentSession(ctx, session.UploadURL)
		return fmt.Errorf("m365: upload attachment %s to %s for %s: %w", name, id, caller.User, err)
	}
	return nil
}

// uploadRanges sends content in order, one SliceSize range at a time; the last answers 201.
func (c *Client) uploadRanges(ctx context.Context, uploadURL string, size int64, content io.Reader) error {
	buf := make([]byte, min(int64(SliceSize), size))
	for next := int64(0); next < size; {
		n := min(int64(len(buf)), size-next)
		if _, err := io.ReadFull(content, buf[:n]); err != nil {
			return fmt.Errorf("read bytes %d-%d: %w", next, next+n-1, err)
		}
		status, err := c.putRange(ctx, uploadURL, next, buf[:n], size)
		if err != nil {
			return err
		}
		next += n
		if (next == size) != (status == http.StatusCreated) {
			return fmt.Errorf("range ending at %d of %d answered %d", next, size, status)
		}
	}
	if extra, _ := content.Read(make([]byte, 1)); extra > 0 {
		return fmt.Errorf("the file holds more than the %d bytes recorded", size)
	}
	return nil
}

// putRange sends one range without a bearer token (the upload URL carries its own) and uncompressed.
func (c *Client) putRange(ctx context.Context, uploadURL string, start int64, b []byte, size int64) (int, error) {
	resp, err := c.sendRange(uncompressed(ctx), uploadURL, start, b, size)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return resp.StatusCode, responseError(fmt.Sprintf("upload attachment bytes from %d", start), resp)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}

// cancelAttachmentSession deletes an upload session so Exchange drops what it received; it outlives a
// cancelled ctx.
func (c *Client) cancelAttachmentSession(ctx context.Context, uploadURL string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_ = c.call(ctx, "cancel attachment upload session", nil, http.MethodDelete, uploadURL, "", nil, nil)
}

// DeleteMessage deletes a message from the caller's mailbox; one already gone is not an error.
func (c *Client) DeleteMessage(ctx context.Context, caller Caller, id string) error {
	err := c.messageCall(ctx, "delete message "+id+" for "+caller.User, caller, http.MethodDelete, c.messageURL(caller, id), nil, nil)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

func (c *Client) messageURL(caller Caller, id string) string {
	return c.graphURL + "/users/" + url.PathEscape(caller.User) + "/messages/" + url.PathEscape(id)
}

// messageCall sends body as JSON (nil: none) about a message addressed by its immutable id, which
// Graph resolves only when asked for immutable ids again, and decodes the answer into out.
func (c *Client) messageCall(ctx context.Context, op string, caller Caller, method, target string, body, out any) error {
	var raw []byte
	ct := ""
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return fmt.Errorf("m365: %s: encode request: %w", op, err)
		}
		ct = "application/json"
	}
	return c.call(ctx, op, &caller, method, target, ct, raw, out, http.Header{"Prefer": {`IdType="ImmutableId"`}})
}
