package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/engage-email/engage/attachments"
	"github.com/engage-email/engage/auth"
	"github.com/engage-email/engage/consent"
	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/store/sqlite"
)

// testAttachments is the attachments feature of a test Engage: local drive and copies in dir.
type testAttachments struct {
	svc     *attachments.Service
	handler http.Handler
	limit   int64
	dir     string
}

func startAttachments(t *testing.T, db *sqlite.DB, svc *followed.Service, consents *consent.Service, base string, max []int64) testAttachments {
	t.Helper()
	limit := int64(1 << 20)
	if len(max) > 0 {
		limit = max[0]
	}
	dir := t.TempDir()
	blobs, err := attachments.NewDir(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	drive, err := attachments.NewLocalDrive(filepath.Join(dir, "drive"), base, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	att := attachments.New(db, db, svc, drive, blobs, consents, attachments.Options{MaxBytes: limit})
	svc.SetFiles(att)
	return testAttachments{svc: att, handler: drive, limit: limit, dir: dir}
}

const addAttachment = `mutation($m: ID!, $f: Upload!, $follow: Boolean!) { addAttachment(messageId: $m, file: $f, followed: $follow) {
	id messageId index name size contentType followed followRequested note } }`

type attachmentOut struct {
	ID, MessageID, Name, ContentType string
	Index, Size                      int
	Followed, FollowRequested        bool
	Note                             *string
}

// upload is one multipart request (graphql-multipart-request-spec) built around a file of size bytes
// read from content, so a large file streams without being held in memory; its length is exact.
func (e *engage) upload(t *testing.T, user, messageID, name string, size int64, content io.Reader, follow bool) (gqlResponse, attachmentOut) {
	t.Helper()
	var head bytes.Buffer
	mw := multipart.NewWriter(&head)
	ops, _ := json.Marshal(map[string]any{"query": addAttachment, "variables": map[string]any{"m": messageID, "f": nil, "follow": follow}})
	mw.WriteField("operations", string(ops))
	mw.WriteField("map", `{"0": ["variables.f"]}`)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="0"; filename="`+name+`"`)
	h.Set("Content-Type", "application/pdf") // the uploader's claim, which Engage does not trust
	if _, err := mw.CreatePart(h); err != nil {
		t.Fatal(err)
	}
	tail := "\r\n--" + mw.Boundary() + "--\r\n"
	req, _ := http.NewRequest("POST", e.URL+"/graphql", io.MultiReader(&head, io.LimitReader(content, size), strings.NewReader(tail)))
	req.ContentLength = int64(head.Len()) + size + int64(len(tail))
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set(auth.LocalHeader, user)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var r gqlResponse
	r.status = res.StatusCode
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("status %d, body %q: %v", res.StatusCode, raw, err)
	}
	var out struct{ AddAttachment attachmentOut }
	if len(r.Data) > 0 && string(r.Data) != "null" {
		if err := json.Unmarshal(r.Data, &out); err != nil {
			t.Fatal(err)
		}
	}
	return r, out.AddAttachment
}

func (e *engage) mustUpload(t *testing.T, user, messageID, name string, content []byte, follow bool) attachmentOut {
	t.Helper()
	r, a := e.upload(t, user, messageID, name, int64(len(content)), bytes.NewReader(content), follow)
	if len(r.Errors) > 0 || a.ID == "" {
		t.Fatalf("upload %s: status %d, %+v", name, r.status, r.Errors)
	}
	return a
}

// followTo follows a message to recipients as rep and returns its id.
func (e *engage) followTo(t *testing.T, follow bool, recipients ...string) string {
	t.Helper()
	var rs []map[string]any
	for _, r := range recipients {
		rs = append(rs, map[string]any{"email": r})
	}
	var out followedOut
	e.mustGQL(t, rep, followMutation, map[string]any{"in": map[string]any{"subject": "Offer", "html": "<html><body><p>Hi</p></body></html>",
		"recipients": rs, "individual": true, "follow": follow}}, &out)
	return out.FollowMessage.ID
}

const rep = "rep@contoso.com"

type messageAttachments struct {
	Message struct {
		Renders []struct {
			HTML    string
			Tracked bool
		}
		Attachments []attachmentOut
		Kpis        struct{ AttachmentOpens int }
	}
}

func (e *engage) attachments(t *testing.T, id string) messageAttachments {
	t.Helper()
	var out messageAttachments
	e.mustGQL(t, rep, `query($id: ID!) { message(id: $id) { renders { html tracked } kpis { attachmentOpens }
		attachments { id messageId index name size contentType followed followRequested note } } }`, map[string]any{"id": id}, &out)
	return out
}

// storedFiles counts the files kept on the local drive and as copies for delivery.
func (e *engage) storedFiles(t *testing.T) int {
	t.Helper()
	n := 0
	for _, sub := range []string{"drive/items", "blobs"} {
		filepath.WalkDir(filepath.Join(e.AttachmentsDir, sub), func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				n++
			}
			return nil
		})
	}
	return n
}

var attachmentHrefRe = regexp.MustCompile(`href="([^"]+/t/a/[^"]+)">([^<]+)</a>`)

var pdf = append([]byte("%PDF-1.7\n"), bytes.Repeat([]byte("offer "), 2000)...)

func TestAttachmentsMixedFollowedAndUnfollowed(t *testing.T) {
	e := start(t)
	id := e.followTo(t, true, "ann@fabrikam.com", "bob@fabrikam.com")
	shared := e.mustUpload(t, rep, id, "Q3 offer.pdf", pdf, true)
	direct := e.mustUpload(t, rep, id, "terms.txt", []byte("Terms and conditions apply."), false)
	if !shared.Followed || shared.Index != 0 || shared.ContentType != "application/pdf" || shared.Size != len(pdf) || shared.Note != nil {
		t.Errorf("followed attachment = %+v", shared)
	}
	if direct.Followed || direct.FollowRequested || direct.Index != 1 || direct.ContentType != "text/plain; charset=utf-8" {
		t.Errorf("unfollowed attachment = %+v (type sniffed, not the claimed application/pdf)", direct)
	}
	m := e.attachments(t, id)
	if len(m.Message.Attachments) != 2 || m.Message.Attachments[0].ID != shared.ID || m.Message.Attachments[1].ID != direct.ID {
		t.Fatalf("message attachments = %+v", m.Message.Attachments)
	}
	if len(m.Message.Renders) != 2 {
		t.Fatalf("%d renders, want one per recipient", len(m.Message.Renders))
	}
	var links []string
	for i, r := range m.Message.Renders {
		found := attachmentHrefRe.FindAllStringSubmatch(r.HTML, -1)
		if len(found) != 1 || found[0][2] != "Q3 offer.pdf" || !strings.Contains(r.HTML, "(11.7 KB, PDF)") {
			t.Fatalf("render %d lists %v, want the followed file alone with its size and type:\n%s", i, found, r.HTML)
		}
		if strings.Contains(r.HTML, "terms.txt") {
			t.Errorf("render %d lists the unfollowed file, which goes on the mail itself", i)
		}
		if !strings.Contains(r.HTML, "</table></body>") {
			t.Errorf("render %d: the block is not at the end of the body", i)
		}
		links = append(links, found[0][1])
	}
	if links[0] == links[1] {
		t.Fatal("both recipients got the same link: opens would not be told apart")
	}

	res := get(t, "GET", links[1], outlookUA)
	res.Body.Close()
	file := res.Header.Get("Location")
	if res.StatusCode != http.StatusFound || !strings.HasPrefix(file, e.URL+"/files/") {
		t.Fatalf("click answered %d to %q, want 302 to the shared file", res.StatusCode, file)
	}
	res = get(t, "GET", file, outlookUA)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !bytes.Equal(body, pdf) || res.Header.Get("Content-Type") != "application/pdf" ||
		!strings.Contains(res.Header.Get("Content-Disposition"), `filename="Q3 offer.pdf"`) {
		t.Fatalf("download: %d %v, %d bytes", res.StatusCode, res.Header, len(body))
	}
	if opens := e.attachments(t, id).Message.Kpis.AttachmentOpens; opens != 1 {
		t.Fatalf("attachmentOpens = %d after one click, want 1", opens)
	}
	var tl struct {
		Message struct {
			Interactions struct {
				Edges []struct {
					Node struct {
						Kind      string
						Recipient *struct{ Email string }
					}
				}
			}
		}
	}
	e.mustGQL(t, rep, `query($id: ID!) { message(id: $id) { interactions { edges { node { kind recipient { email } } } } } }`,
		map[string]any{"id": id}, &tl)
	if ed := tl.Message.Interactions.Edges; len(ed) != 1 || ed[0].Node.Kind != "ATTACHMENT_OPENED" || ed[0].Node.Recipient == nil ||
		ed[0].Node.Recipient.Email != "bob@fabrikam.com" {
		t.Fatalf("interactions = %+v, want bob's ATTACHMENT_OPENED", ed)
	}

	var removed struct{ RemoveAttachment attachmentOut }
	e.mustGQL(t, rep, `mutation($id: ID!) { removeAttachment(id: $id) { id name } }`, map[string]any{"id": shared.ID}, &removed)
	after := e.attachments(t, id)
	if len(after.Message.Attachments) != 1 || strings.Contains(after.Message.Renders[0].HTML, "/t/a/") {
		t.Fatalf("after removing the followed file: %+v", after.Message)
	}
	if res := get(t, "GET", file, outlookUA); res.StatusCode != http.StatusNotFound {
		t.Fatalf("the removed file still downloads: %d", res.StatusCode)
	}
	if res := get(t, "GET", links[0], outlookUA); res.StatusCode != http.StatusFound {
		t.Fatalf("a link in mail already out must still redirect: %d", res.StatusCode)
	}
}

func TestAttachmentsToAnUnfollowedMessageAreAttachedDirectly(t *testing.T) {
	e := start(t)
	id := e.followTo(t, false, "ann@fabrikam.com")
	a := e.mustUpload(t, rep, id, "offer.pdf", pdf, true)
	if a.Followed || !a.FollowRequested || a.Note == nil || *a.Note != attachments.NoteNotFollowed {
		t.Fatalf("attachment to a message sent with Don't follow = %+v", a)
	}
	if m := e.attachments(t, id); strings.Contains(m.Message.Renders[0].HTML, "offer.pdf") {
		t.Fatal("an unfollowed message's render lists the file")
	}
}

func TestAttachmentBadInput(t *testing.T) {
	e := start(t)
	mine := e.followTo(t, true, "ann@fabrikam.com")
	sent := e.followTo(t, true, "bob@fabrikam.com")
	e.mustGQL(t, rep, `mutation($id: ID!) { sendMessage(id: $id) { id } }`, map[string]any{"id": sent}, nil)
	const limit = 1 << 20
	tests := []struct {
		name, user, message, file string
		size                      int64
		status                    int
		code, text                string
	}{
		{"over the limit", rep, mine, "big.pdf", limit + 1, 200, "PAYLOAD_TOO_LARGE", "over the limit of 1.0 MB"},
		{"far over the limit", rep, mine, "huge.pdf", 4 * limit, 413, "PAYLOAD_TOO_LARGE", "over the limit"},
		{"empty file", rep, mine, "empty.pdf", 0, 200, "BAD_USER_INPUT", "empty"},
		{"nothing left of the name", rep, mine, "\u202e\u200b", 10, 200, "BAD_USER_INPUT", "nothing left"},
		{"dots for a name", rep, mine, "..", 10, 200, "BAD_USER_INPUT", "names a folder"},
		{"someone else's message", "other@contoso.com", mine, "a.pdf", 10, 200, "NOT_FOUND", ""},
		{"unknown message", rep, "nope", "a.pdf", 10, 200, "NOT_FOUND", ""},
		{"message already sent", rep, sent, "a.pdf", 10, 200, "BAD_USER_INPUT", "already sent"},
		{"anonymous", "", mine, "a.pdf", 10, 200, "UNAUTHENTICATED", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, a := e.upload(t, tc.user, tc.message, tc.file, tc.size, bytes.NewReader(bytes.Repeat([]byte("x"), int(tc.size))), true)
			if r.status != tc.status || r.code() != tc.code || a.ID != "" || !strings.Contains(r.Errors[0].Message, tc.text) {
				t.Fatalf("status %d, %+v; want %d %s containing %q", r.status, r.Errors, tc.status, tc.code, tc.text)
			}
		})
	}
	t.Run("unknown length", func(t *testing.T) {
		req, _ := http.NewRequest("POST", e.URL+"/graphql", io.MultiReader(strings.NewReader("--b\r\n")))
		req.ContentLength = -1
		req.Header.Set("Content-Type", "multipart/form-data; boundary=b")
		req.Header.Set(auth.LocalHeader, rep)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusLengthRequired {
			t.Fatalf("chunked upload answered %d, want 411", res.StatusCode)
		}
	})
	// The multipart reader keeps only a filename's last element, so a path never reaches Engage's
	// rules (which refuse it: see attachments.SanitizeName); the file lands in the drive's folder.
	escape := e.mustUpload(t, rep, mine, "../../x", []byte("%PDF-1.7 escape"), true)
	if escape.Name != "x" {
		t.Fatalf("a file named ../../x was stored as %q", escape.Name)
	}
	e.mustGQL(t, rep, `mutation($id: ID!) { removeAttachment(id: $id) { id } }`, map[string]any{"id": escape.ID}, nil)
	if n := len(e.attachments(t, mine).Message.Attachments) + e.storedFiles(t); n != 0 {
		t.Fatalf("refused uploads left %d attachments or stored files", n)
	}
	if r := e.gql(t, rep, `mutation { removeAttachment(id: "nope") { id } }`, nil, nil); r.code() != "NOT_FOUND" {
		t.Fatalf("removing an unknown attachment: %+v", r.Errors)
	}
}

// A name with ".." inside it ("v2..final") is a name like any other: it is shared, downloads, and is
// removed with its message's attachment, not refused as a path that climbs out of the drive.
func TestAttachmentNameWithDotsInside(t *testing.T) {
	e := start(t)
	id := e.followTo(t, true, "ann@fabrikam.com")
	a := e.mustUpload(t, rep, id, "Offer v2..final.pdf", pdf, true)
	if !a.Followed || a.Name != "Offer v2..final.pdf" {
		t.Fatalf("attachment = %+v", a)
	}
	found := attachmentHrefRe.FindStringSubmatch(e.attachments(t, id).Message.Renders[0].HTML)
	if found == nil {
		t.Fatal("the render lists no file")
	}
	res := get(t, "GET", found[1], outlookUA)
	res.Body.Close()
	res = get(t, "GET", res.Header.Get("Location"), outlookUA)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !bytes.Equal(body, pdf) {
		t.Fatalf("download: %d, %d bytes", res.StatusCode, len(body))
	}
	e.mustGQL(t, rep, `mutation($id: ID!) { removeAttachment(id: $id) { id } }`, map[string]any{"id": a.ID}, nil)
	if n := e.storedFiles(t); n != 0 {
		t.Fatalf("%d files left after the removal", n)
	}
}
