package m365

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/engage-email/engage/attachments"
	"github.com/engage-email/engage/auth"
	"github.com/engage-email/engage/consent"
	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/m365/m365test"
	"github.com/engage-email/engage/store/sqlite"
)

// pattern is deterministic file content of n bytes, different at every offset that matters.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/4099)
	}
	return b
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

type driveCall struct{ method, path, contentRange string }

func (c driveCall) String() string {
	return strings.TrimSpace(c.method + " " + c.path + " " + c.contentRange)
}

// calls is what the fake Graph saw, without token traffic.
func (c *cloud) calls() []driveCall {
	var out []driveCall
	for _, r := range c.graph.Requests() {
		out = append(out, driveCall{r.Method, r.Path, r.ContentRange})
	}
	return out
}

func TestUploadFileRequestSequence(t *testing.T) {
	const mib = 1 << 20
	root := "/users/alice@contoso.com/drive/root:/Engage/2026-11/"
	tests := []struct {
		name string
		size int
		fail []int64 // slices that fail once, by first byte
		want []driveCall
	}{
		{name: "3 MiB in one PUT", size: 3 * mib, want: []driveCall{{"PUT", root + "Q3 offer.pdf:/content", ""}}},
		{name: "10 MiB in an upload session", size: 10 * mib, want: []driveCall{
			{"POST", root + "Q3 offer.pdf:/createUploadSession", ""},
			{"PUT", "/upload/s1", "bytes 0-3276799/10485760"},
			{"PUT", "/upload/s1", "bytes 3276800-6553599/10485760"},
			{"PUT", "/upload/s1", "bytes 6553600-9830399/10485760"},
			{"PUT", "/upload/s1", "bytes 9830400-10485759/10485760"},
		}},
		{name: "a slice that fails once is resumed", size: 10 * mib, fail: []int64{3276800}, want: []driveCall{
			{"POST", root + "Q3 offer.pdf:/createUploadSession", ""},
			{"PUT", "/upload/s1", "bytes 0-3276799/10485760"},
			{"PUT", "/upload/s1", "bytes 3276800-6553599/10485760"},
			{"GET", "/upload/s1", ""},
			{"PUT", "/upload/s1", "bytes 3276800-6553599/10485760"},
			{"PUT", "/upload/s1", "bytes 6553600-9830399/10485760"},
			{"PUT", "/upload/s1", "bytes 9830400-10485759/10485760"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCloud(t, nil)
			for _, at := range tc.fail {
				c.graph.FailSlice(at, http.StatusInternalServerError)
			}
			content := pattern(tc.size)
			alice := c.userCaller(t, "alice@contoso.com")
			ref, err := c.client.UploadFile(context.Background(), alice, "Engage/2026-11", "Q3 offer.pdf", int64(tc.size),
				"application/pdf", bytes.NewReader(content))
			if err != nil {
				t.Fatalf("UploadFile: %v", err)
			}
			got := c.calls()
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("requests:\n got %v\nwant %v", got, tc.want)
			}
			for i, r := range c.graph.Requests() {
				upload := strings.HasPrefix(r.Path, "/upload/")
				if upload != (r.Authorization == "") {
					t.Errorf("request %d (%s %s) authorization %q: Graph calls need alice's token, upload URLs none", i, r.Method, r.Path, r.Authorization)
				}
			}
			files := c.graph.DriveFiles("alice@contoso.com")
			if len(files) != 1 || files[0].ID != ref.ID || files[0].Size != int64(tc.size) || files[0].SHA256 != digest(content) {
				t.Fatalf("drive holds %+v, want the file whole as %s", files, ref.ID)
			}
			if files[0].Path != "Engage/2026-11/Q3 offer.pdf" || ref.Name != "Q3 offer.pdf" {
				t.Errorf("stored at %q named %q", files[0].Path, ref.Name)
			}
		})
	}
}

func TestUploadFileRenamesOnConflict(t *testing.T) {
	c := newCloud(t, nil)
	alice := c.userCaller(t, "alice@contoso.com")
	for i, want := range []string{"terms.txt", "terms 1.txt", "terms 2.txt"} {
		body := []byte(fmt.Sprintf("version %d", i))
		ref, err := c.client.UploadFile(context.Background(), alice, "Engage/2026-11", "terms.txt", int64(len(body)), "text/plain", bytes.NewReader(body))
		if err != nil || ref.Name != want {
			t.Fatalf("upload %d: %+v, %v; want name %q", i, ref, err, want)
		}
	}
	if n := len(c.graph.DriveFiles("alice@contoso.com")); n != 3 {
		t.Fatalf("%d files, want 3: none overwritten", n)
	}
	for _, r := range c.graph.Requests() {
		if r.Query.Get("@microsoft.graph.conflictBehavior") != "rename" {
			t.Errorf("%s %s without conflictBehavior=rename", r.Method, r.Path)
		}
	}
}

// cancelAt cancels a context once the reader has been read past a byte offset.
type cancelAt struct {
	io.ReadSeeker
	at     int64
	pos    int64
	cancel context.CancelFunc
}

func (c *cancelAt) Read(p []byte) (int, error) {
	n, err := c.ReadSeeker.Read(p)
	c.pos += int64(n)
	if c.pos > c.at {
		c.cancel()
	}
	return n, err
}

func (c *cancelAt) Seek(off int64, whence int) (int64, error) {
	p, err := c.ReadSeeker.Seek(off, whence)
	c.pos = p
	return p, err
}

func TestUploadFileFailuresCancelTheSession(t *testing.T) {
	const size = 10 << 20
	tests := []struct {
		name string
		run  func(c *cloud, alice Caller) error
		want error
	}{
		{"caller gives up mid-upload", func(c *cloud, alice Caller) error {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			r := &cancelAt{ReadSeeker: bytes.NewReader(pattern(size)), at: SliceSize + 1, cancel: cancel}
			_, err := c.client.UploadFile(ctx, alice, "Engage/2026-11", "big.bin", size, "application/octet-stream", r)
			return err
		}, context.Canceled},
		{"a slice keeps failing", func(c *cloud, alice Caller) error {
			for range maxSliceFailures + 1 {
				c.graph.FailSlice(SliceSize, http.StatusInternalServerError)
			}
			_, err := c.client.UploadFile(context.Background(), alice, "Engage/2026-11", "big.bin", size, "application/octet-stream",
				bytes.NewReader(pattern(size)))
			return err
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCloud(t, nil)
			err := tc.run(c, c.userCaller(t, "alice@contoso.com"))
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("err %v, want a failure (%v)", err, tc.want)
			}
			reqs := c.calls()
			if last := reqs[len(reqs)-1]; last.method != "DELETE" || last.path != "/upload/s1" {
				t.Fatalf("last request %v, want the session cancelled; all: %v", last, reqs)
			}
			if n := c.graph.OpenSessions(); n != 0 || len(c.graph.DriveFiles("alice@contoso.com")) != 0 {
				t.Fatalf("%d sessions open and %d files left after a failed upload", n, len(c.graph.DriveFiles("alice@contoso.com")))
			}
		})
	}
}

func TestDriveShareAndDelete(t *testing.T) {
	expires := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	customers := []string{"ann@fabrikam.com", "bob@contoso.com"}
	tests := []struct {
		link attachments.Link
		want map[string]any
	}{
		{attachments.Link{Scope: attachments.ScopeOrganization}, map[string]any{"type": "view", "scope": "organization"}},
		{attachments.Link{Scope: attachments.ScopeAnonymous, Recipients: customers, Expires: expires},
			map[string]any{"type": "view", "scope": "anonymous", "expirationDateTime": "2026-12-02T09:00:00Z"}},
		// The message's recipients only, an outside customer included: a specific-people link naming them.
		{attachments.Link{Scope: attachments.ScopeUsers, Recipients: customers}, map[string]any{"type": "view", "scope": "users",
			"recipients": []any{map[string]any{"email": "ann@fabrikam.com"}, map[string]any{"email": "bob@contoso.com"}}}},
	}
	for _, tc := range tests {
		t.Run(string(tc.link.Scope), func(t *testing.T) {
			c := newCloud(t, nil)
			d := NewDrive(c.client)
			owner := attachments.Owner{Mailbox: "alice@contoso.com", UserToken: c.userCaller(t, "alice@contoso.com").UserToken}
			body := []byte("%PDF-1.7 offer")
			item, err := d.Upload(context.Background(), owner, attachments.DriveFile{Folder: "Engage/2026-11", Name: "offer.pdf",
				Size: int64(len(body)), ContentType: "application/pdf"}, bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			link, err := d.Share(context.Background(), owner, item.ID, tc.link)
			if err != nil {
				t.Fatal(err)
			}
			reqs := c.graph.Requests()
			share := reqs[len(reqs)-1]
			if share.Method != "POST" || share.Path != "/users/alice@contoso.com/drive/items/"+item.ID+"/createLink" ||
				fmt.Sprint(share.Body) != fmt.Sprint(tc.want) {
				t.Fatalf("share request %s %s %v, want createLink with %v", share.Method, share.Path, share.Body, tc.want)
			}
			files := c.graph.DriveFiles("alice@contoso.com")
			if len(files) != 1 || len(files[0].Links) != 1 || files[0].Links[0].WebURL != link || files[0].ContentType != "application/pdf" {
				t.Fatalf("drive %+v, link %q", files, link)
			}
			var letIn []string // only a users link names anyone
			if tc.link.Scope == attachments.ScopeUsers {
				letIn = customers
			}
			if got := files[0].Links[0]; got.Scope != string(tc.link.Scope) || fmt.Sprint(got.Recipients) != fmt.Sprint(letIn) {
				t.Fatalf("link made for %s %v, want %s %v", got.Scope, got.Recipients, tc.link.Scope, letIn)
			}
			if err := d.Delete(context.Background(), owner, item.ID); err != nil {
				t.Fatal(err)
			}
			if err := d.Delete(context.Background(), owner, item.ID); err != nil {
				t.Fatalf("deleting an item already gone: %v", err)
			}
			if n := len(c.graph.DriveFiles("alice@contoso.com")); n != 0 {
				t.Fatalf("%d files after delete", n)
			}
		})
	}
}

// An upload session that names a range past the file's end, or keeps answering 202 once every byte
// went up, fails the upload with a clear error: it neither panics nor loops for ever.
func TestUploadSliceAnswersOutOfBounds(t *testing.T) {
	const size = 1000
	tests := []struct {
		name   string
		answer string // the body of every 202
	}{
		{"a range past the end", `{"nextExpectedRanges":["5000-"]}`},
		{"a range at the end", `{"nextExpectedRanges":["1000-"]}`},
		{"no range once every byte went up", `{"nextExpectedRanges":[]}`},
		{"the same range again and again", `{"nextExpectedRanges":["0-"]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			puts := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				puts++
				io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusAccepted)
				io.WriteString(w, tc.answer)
			}))
			defer srv.Close()
			c := newCloud(t, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := c.client.uploadSlices(ctx, srv.URL+"/up", size, bytes.NewReader(pattern(size)))
			if err == nil || ctx.Err() != nil {
				t.Fatalf("err %v after %d PUTs (ctx %v), want the session's answer refused", err, puts, ctx.Err())
			}
			if !strings.Contains(err.Error(), "upload session") {
				t.Fatalf("err %v does not say what failed", err)
			}
		})
	}
}

// A tenant that does not share outside the organisation refuses a link naming customers: the file is
// then attached to the mail itself, with a note saying why, and nothing is left on the drive. A
// passing failure (throttling) still fails the upload, for the salesperson to try again.
func TestRefusedSharingLinkAttachesTheFile(t *testing.T) {
	tests := []struct {
		name   string
		status int
		want   string // "" for the file attached directly
	}{
		{"refused by policy", http.StatusForbidden, ""},
		{"refused as a bad request", http.StatusBadRequest, ""},
		{"throttled", http.StatusServiceUnavailable, "share offer.pdf"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			c := newCloud(t, nil)
			db := sqlite.OpenTemp(t)
			keys, err := followed.LoadOrCreateKeyRing(t.TempDir(), "")
			if err != nil {
				t.Fatal(err)
			}
			svc, err := followed.NewService(db, keys, "https://engage.contoso.com", followed.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			consents, err := consent.NewService(ctx, db, consent.Options{Log: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			blobs, err := attachments.NewDir(filepath.Join(t.TempDir(), "blobs"))
			if err != nil {
				t.Fatal(err)
			}
			files := attachments.New(db, db, svc, NewDrive(c.client), blobs, consents, attachments.Options{})
			svc.SetFiles(files)
			alice := auth.Identity{Email: "alice@contoso.com", Token: c.userCaller(t, "alice@contoso.com").UserToken}
			m, err := svc.Follow(ctx, alice, followed.FollowInput{Subject: "Offer", HTML: "<p>Hi</p>", Follow: true,
				Recipients: []followed.Recipient{{Email: "ann@fabrikam.com"}}})
			if err != nil {
				t.Fatal(err)
			}
			c.graph.Fail(m365test.Fault{Method: "POST", Path: "/users/alice@contoso.com/drive/items/*", Times: 10,
				Status: tc.status, Code: "accessDenied", Message: "Sharing outside the organisation is off"})
			body := []byte("%PDF-1.7 offer")
			a, err := files.Add(ctx, alice, m.ID, attachments.Upload{Name: "offer.pdf", Size: int64(len(body)), Content: bytes.NewReader(body)}, true)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("add: %+v, %v; want an error naming %q", a, err, tc.want)
				}
				return
			}
			if err != nil || a.Shared || a.Note != attachments.NoteShareRefused || a.Blob == "" {
				t.Fatalf("add: %+v, %v; want the file attached with a note", a, err)
			}
			if left := c.graph.DriveFiles("alice@contoso.com"); len(left) != 0 {
				t.Fatalf("files left on the drive: %v", left)
			}
		})
	}
}
