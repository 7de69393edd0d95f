package m365

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	khttp "github.com/microsoft/kiota-http-go"

	"github.com/engage-email/engage/attachments"
)

// OneDrive calls are made as raw HTTP through the client's authenticated, retrying transport rather
// than the SDK's drives builders: upload slices go to a pre-authenticated upload URL that must not carry
// a bearer token, kiota's URI templates escape the ":" of path-based addressing (root:/folder/name:),
// the SDK's large-file task lives outside the subpackages Engage may import, and resuming from the
// server's nextExpectedRanges with the caller's context is a loop we need to own and test.
const (
	// SimpleUploadMax is the largest file sent in one PUT; larger ones use an upload session.
	SimpleUploadMax = 4 << 20
	// sliceUnit is the granularity Graph requires of every slice but the last (320 KiB).
	sliceUnit = 320 << 10
	// SliceSize is how much one upload-session PUT carries: ten units, so memory per upload stays ~3 MiB.
	SliceSize = 10 * sliceUnit
	// maxSliceFailures bounds consecutive failed slices (each followed by a resume) before giving up.
	maxSliceFailures = 4
)

// DriveItemRef names an uploaded file.
type DriveItemRef struct{ ID, Name string }

// UploadFile stores size bytes of content as folder/name in the caller's OneDrive, renaming on a name
// conflict (never overwriting): one PUT up to SimpleUploadMax, an upload session above it, whose slices
// are retried and resumed from what the server says it is missing. A failed session is cancelled.
func (c *Client) UploadFile(ctx context.Context, caller Caller, folder, name string, size int64, contentType string,
	content io.ReadSeeker) (DriveItemRef, error) {
	if size <= 0 || name == "" {
		return DriveItemRef{}, errors.New("m365: upload file: a name and a positive size are required")
	}
	itemPath := c.graphURL + "/users/" + url.PathEscape(caller.User) + "/drive/root:/" + escapePath(folder+"/"+name) + ":"
	if size <= SimpleUploadMax {
		body := make([]byte, size)
		if _, err := io.ReadFull(content, body); err != nil {
			return DriveItemRef{}, fmt.Errorf("m365: upload %s: read file: %w", name, err)
		}
		var item driveItem
		op := "upload " + name + " for " + caller.User
		err := c.call(uncompressed(ctx), op, &caller, http.MethodPut,
			itemPath+"/content?@microsoft.graph.conflictBehavior=rename", contentType, body, &item)
		if err != nil {
			return DriveItemRef{}, err
		}
		return item.ref(op)
	}
	var session struct {
		UploadURL string `json:"uploadUrl"`
	}
	op := "create upload session for " + name
	req := map[string]any{"item": map[string]any{"@microsoft.graph.conflictBehavior": "rename", "name": name}}
	if err := c.callJSON(ctx, op, &caller, http.MethodPost, itemPath+"/createUploadSession", req, &session); err != nil {
		return DriveItemRef{}, err
	}
	if session.UploadURL == "" {
		return DriveItemRef{}, fmt.Errorf("m365: %s: graph returned no upload URL", op)
	}
	item, err := c.uploadSlices(ctx, session.UploadURL, size, content)
	if err != nil {
		c.cancelSession(ctx, session.UploadURL)
		return DriveItemRef{}, fmt.Errorf("m365: upload %s for %s: %w", name, caller.User, err)
	}
	return item.ref("upload " + name)
}

// uploadSlices sends content in SliceSize slices from byte 0; after a failed slice it asks the
// session what it is missing and resumes there.
func (c *Client) uploadSlices(ctx context.Context, uploadURL string, size int64, content io.ReadSeeker) (driveItem, error) {
	buf := make([]byte, SliceSize)
	var next int64
	failures, stalls := 0, 0
	for {
		if err := ctx.Err(); err != nil {
			return driveItem{}, err
		}
		n := min(int64(SliceSize), size-next)
		if _, err := content.Seek(next, io.SeekStart); err != nil {
			return driveItem{}, fmt.Errorf("seek to %d: %w", next, err)
		}
		if _, err := io.ReadFull(content, buf[:n]); err != nil {
			return driveItem{}, fmt.Errorf("read bytes %d-%d: %w", next, next+n-1, err)
		}
		var done driveItem
		var progress uploadProgress
		status, err := c.putSlice(ctx, uploadURL, next, buf[:n], size, &done, &progress)
		switch {
		case err == nil && (status == http.StatusOK || status == http.StatusCreated):
			return done, nil
		case err == nil:
			failures = 0
			at := next
			if next, err = progress.resumeAt(next+n, size); err != nil {
				return driveItem{}, err
			}
			if stalls++; next > at {
				stalls = 0
			} else if stalls > maxSliceFailures { // it takes the slice and asks for it again
				return driveItem{}, fmt.Errorf("upload session asked for bytes from %d %d times", next, stalls)
			}
			continue
		case ctx.Err() != nil:
			return driveItem{}, ctx.Err()
		}
		failures++
		if failures > maxSliceFailures {
			return driveItem{}, fmt.Errorf("slice at %d failed %d times: %w", next, failures, err)
		}
		var state uploadProgress
		if serr := c.callJSON(ctx, "upload session status", nil, http.MethodGet, uploadURL, nil, &state); serr != nil {
			return driveItem{}, fmt.Errorf("slice at %d: %w; session status: %w", next, err, serr)
		}
		if next, err = state.resumeAt(next, size); err != nil {
			return driveItem{}, err
		}
	}
}

// putSlice sends one slice, without a bearer token: the upload URL carries its own authorisation.
func (c *Client) putSlice(ctx context.Context, uploadURL string, start int64, slice []byte, size int64,
	done *driveItem, progress *uploadProgress) (int, error) {
	resp, err := c.sendRange(ctx, uploadURL, start, slice, size)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK, http.StatusCreated:
		return resp.StatusCode, decodeJSON(resp.Body, done)
	case http.StatusAccepted:
		return resp.StatusCode, decodeJSON(resp.Body, progress)
	}
	return resp.StatusCode, responseError(fmt.Sprintf("upload bytes from %d", start), resp)
}

// sendRange PUTs b as the bytes of an upload session from start, of size in all: the request both
// OneDrive's and Exchange's upload sessions take. The caller closes the response body.
func (c *Client) sendRange(ctx context.Context, uploadURL string, start int64, b []byte, size int64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, uploadURL, bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("range request: %w", err)
	}
	req.Header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, start+int64(len(b))-1, size))
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("range from %d: %w", start, err)
	}
	return resp, nil
}

// uploadProgress is an upload session's state: the byte ranges it is still missing.
type uploadProgress struct {
	NextExpectedRanges []string `json:"nextExpectedRanges"`
}

// resumeAt is where to send from next: the start of the first missing range, or fallback when the
// server named none.
//
// Every byte of a size-byte file is below size: a session that asks for more once it has them all
// (or names a range past the end) would be fed empty slices for ever, so its answer is refused.
func (p uploadProgress) resumeAt(fallback, size int64) (int64, error) {
	if len(p.NextExpectedRanges) == 0 {
		if fallback >= size {
			return 0, fmt.Errorf("upload session took all %d bytes but named no file", size)
		}
		return fallback, nil
	}
	first, _, _ := strings.Cut(p.NextExpectedRanges[0], "-")
	at, err := strconv.ParseInt(first, 10, 64)
	if err != nil || at < 0 || at >= size {
		return 0, fmt.Errorf("upload session named a bad range %q for %d bytes", p.NextExpectedRanges[0], size)
	}
	return at, nil
}

// cancelSession deletes an upload session so its fragments are dropped; it outlives a cancelled ctx.
func (c *Client) cancelSession(ctx context.Context, uploadURL string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_ = c.call(ctx, "cancel upload session", nil, http.MethodDelete, uploadURL, "", nil, nil)
}

// CreateSharingLink makes a view-only link to an item for scope ("organization", "anonymous", or
// "users": only the people at the recipients' addresses, who must be named), expiring at expires
// unless it is zero, and returns its URL.
func (c *Client) CreateSharingLink(ctx context.Context, caller Caller, itemID, scope string, recipients []string,
	expires time.Time) (string, error) {
	if scope == "users" && len(recipients) == 0 {
		return "", fmt.Errorf("m365: share item %s for %s: a link for specific people needs at least one recipient", itemID, caller.User)
	}
	body := map[string]any{"type": "view", "scope": scope}
	if len(recipients) > 0 {
		// Graph's driveRecipient: an address lets in that person, inside the tenant or outside it.
		list := make([]map[string]string, len(recipients))
		for i, r := range recipients {
			list[i] = map[string]string{"email": r}
		}
		body["recipients"] = list
	}
	if !expires.IsZero() {
		body["expirationDateTime"] = expires.UTC().Format(time.RFC3339)
	}
	var perm struct {
		Link struct {
			WebURL string `json:"webUrl"`
		} `json:"link"`
	}
	op := "share item " + itemID + " for " + caller.User
	if err := c.callJSON(ctx, op, &caller, http.MethodPost, c.itemURL(caller, itemID)+"/createLink", body, &perm); err != nil {
		return "", err
	}
	if perm.Link.WebURL == "" {
		return "", fmt.Errorf("m365: %s: graph returned no link", op)
	}
	return perm.Link.WebURL, nil
}

// DeleteItem deletes an item from the caller's drive; one already gone is not an error.
func (c *Client) DeleteItem(ctx context.Context, caller Caller, itemID string) error {
	err := c.call(ctx, "delete item "+itemID+" for "+caller.User, &caller, http.MethodDelete, c.itemURL(caller, itemID), "", nil, nil)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

func (c *Client) itemURL(caller Caller, itemID string) string {
	return c.graphURL + "/users/" + url.PathEscape(caller.User) + "/drive/items/" + url.PathEscape(itemID)
}

// callJSON sends body as JSON (nil: no body) and decodes the answer into out.
func (c *Client) callJSON(ctx context.Context, op string, caller *Caller, method, target string, body, out any) error {
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return fmt.Errorf("m365: %s: encode request: %w", op, err)
		}
	}
	ct := ""
	if raw != nil {
		ct = "application/json"
	}
	return c.call(ctx, op, caller, method, target, ct, raw, out)
}

// call makes one Graph request, with the caller's token unless caller is nil, and decodes a JSON answer
// into out; a refusal becomes a *GraphError.
func (c *Client) call(ctx context.Context, op string, caller *Caller, method, target, contentType string, body []byte,
	out any, extra ...http.Header) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return fmt.Errorf("m365: %s: %w", op, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for _, h := range extra {
		for k, vs := range h {
			req.Header[k] = vs
		}
	}
	if caller != nil {
		tok, err := c.tokens.forCaller(ctx, *caller)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("m365: %s: %w", op, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return responseError(op, resp)
	}
	if out == nil {
		return nil
	}
	if err := decodeJSON(resp.Body, out); err != nil {
		return fmt.Errorf("m365: %s: %w", op, err)
	}
	return nil
}

// responseError reads Graph's error envelope into a *GraphError.
func responseError(op string, resp *http.Response) error {
	ge := &GraphError{Status: resp.StatusCode, Op: op}
	var env struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&env) == nil {
		ge.Code, ge.Message = env.Error.Code, env.Error.Message
	}
	if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
		ge.RetryAfter = d
	}
	return ge
}

// maxAnswer bounds a Graph answer Engage reads. A message's body comes whole in its answer, and
// followed mail may hold up to 5 MB of HTML (more once JSON escapes it): a 1 MiB bound failed every
// read of a long mail, received or sent.
const maxAnswer = 16 << 20

func decodeJSON(r io.Reader, out any) error {
	if err := json.NewDecoder(io.LimitReader(r, maxAnswer)).Decode(out); err != nil {
		return fmt.Errorf("decode graph answer: %w", err)
	}
	return nil
}

type driveItem struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

func (d driveItem) ref(op string) (DriveItemRef, error) {
	if d.ID == "" {
		return DriveItemRef{}, fmt.Errorf("m365: %s: graph returned no item id", op)
	}
	return DriveItemRef(d), nil
}

// escapePath escapes each segment of a slash-separated drive path.
func escapePath(p string) string {
	parts := strings.Split(strings.Trim(p, "/"), "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

// uncompressed turns off kiota's request compression: a file's bytes go as they are.
func uncompressed(ctx context.Context) context.Context {
	opt := khttp.NewCompressionOptionsReference(false)
	return context.WithValue(ctx, opt.GetKey(), opt)
}

// Drive lets attachments keep shared files on the sender's OneDrive for Business.
type Drive struct{ c *Client }

// NewDrive returns the OneDrive drive over c.
func NewDrive(c *Client) *Drive { return &Drive{c: c} }

var _ attachments.Drive = (*Drive)(nil)

func ownerCaller(o attachments.Owner) Caller { return Caller{User: o.Mailbox, UserToken: o.UserToken} }

// Upload implements attachments.Drive.
func (d *Drive) Upload(ctx context.Context, owner attachments.Owner, f attachments.DriveFile, content io.ReadSeeker) (attachments.DriveItem, error) {
	ref, err := d.c.UploadFile(ctx, ownerCaller(owner), f.Folder, f.Name, f.Size, f.ContentType, content)
	if err != nil {
		return attachments.DriveItem{}, err
	}
	return attachments.DriveItem{ID: ref.ID, Name: ref.Name}, nil
}

// Share implements attachments.Drive; only a ScopeUsers link names its recipients to Graph.
func (d *Drive) Share(ctx context.Context, owner attachments.Owner, itemID string, link attachments.Link) (string, error) {
	var recipients []string
	if link.Scope == attachments.ScopeUsers {
		recipients = link.Recipients
	}
	url, err := d.c.CreateSharingLink(ctx, ownerCaller(owner), itemID, string(link.Scope), recipients, link.Expires)
	var ge *GraphError
	if errors.As(err, &ge) && (ge.Status == http.StatusBadRequest || ge.Status == http.StatusForbidden) {
		return "", fmt.Errorf("%w: %w", attachments.ErrShareRefused, err) // a policy's no, not a passing failure
	}
	return url, err
}

// Delete implements attachments.Drive.
func (d *Drive) Delete(ctx context.Context, owner attachments.Owner, itemID string) error {
	return d.c.DeleteItem(ctx, ownerCaller(owner), itemID)
}
