package m365

import (
	"bytes"
	"context"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/engage-email/engage/attachments"
	"github.com/engage-email/engage/auth"
	"github.com/engage-email/engage/delivery"
	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/m365/m365test"
)

// file is an unfollowed attachment of the test message, with deterministic content.
type file struct {
	name string
	size int
}

func (f file) content() []byte {
	b := make([]byte, f.size)
	r := rand.NewChaCha8([32]byte{byte(f.size), byte(f.size >> 8), byte(f.size >> 16)})
	_, _ = r.Read(b)
	return b
}

// sendWithFiles follows alice's message to ann with files attached unfollowed (kept for delivery to
// attach) and sends it now through the fake Graph.
func sendWithFiles(t *testing.T, s *sending, files []file) (delivery.Job, followed.Message) {
	t.Helper()
	return sendWithBody(t, s, "<p>Hi</p>", files)
}

// sendWithBody is sendWithFiles with the message's HTML.
func sendWithBody(t *testing.T, s *sending, html string, files []file) (delivery.Job, followed.Message) {
	t.Helper()
	ctx := context.Background()
	blobs, err := attachments.NewDir(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	att := attachments.New(s.db, s.db, s.followed, nil, blobs, nil, attachments.Options{})
	s.followed.SetFiles(att)
	alice := auth.Identity{Email: "alice@contoso.com", Token: s.userCaller(t, "alice@contoso.com").UserToken}
	m, err := s.followed.Follow(ctx, alice, followed.FollowInput{Subject: "Proposal", HTML: html, Follow: true,
		Recipients: []followed.Recipient{{Email: "ann@fabrikam.com"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if _, err := att.Add(ctx, alice, m.ID, attachments.Upload{Name: f.name, Size: int64(f.size), Content: bytes.NewReader(f.content())}, false); err != nil {
			t.Fatal(err)
		}
	}
	sends := delivery.New(s.db, s.db, NewMailer(s.client), delivery.Options{Instance: "api", Now: s.clock, Files: att})
	j, err := sends.Send(ctx, alice, m.ID, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return j, m
}

// wantRequest is one Graph request: its method, path (DRAFT and SESSION stand for the draft's id and
// the upload session's path) and, for an upload range, its Content-Range.
type wantRequest struct{ method, path, contentRange string }

func TestUnfollowedFilesExactGraphRequests(t *testing.T) {
	const msgs = "/users/alice@contoso.com/messages"
	const mib = 1 << 20
	cases := []struct {
		name  string
		html  string // default a short paragraph
		files []file
		want  []wantRequest
		via   []string // how each file reached the draft, in the order attached
	}{
		{name: "1 MiB inside the draft", files: []file{{"small.pdf", mib}},
			want: []wantRequest{{"POST", msgs, ""}, {"POST", msgs + "/DRAFT/send", ""}}, via: []string{"draft"}},
		{name: "8 MiB through an upload session", files: []file{{"large.bin", 8 * mib}},
			want: []wantRequest{{"POST", msgs, ""}, {"POST", msgs + "/DRAFT/attachments/createUploadSession", ""},
				{"PUT", "SESSION", "bytes 0-3276799/8388608"}, {"PUT", "SESSION", "bytes 3276800-6553599/8388608"},
				{"PUT", "SESSION", "bytes 6553600-8388607/8388608"}, {"POST", msgs + "/DRAFT/send", ""}},
			via: []string{"session"}},
		{name: "1 MiB and 8 MiB", files: []file{{"small.pdf", mib}, {"large.bin", 8 * mib}},
			want: []wantRequest{{"POST", msgs, ""}, {"POST", msgs + "/DRAFT/attachments/createUploadSession", ""},
				{"PUT", "SESSION", "bytes 0-3276799/8388608"}, {"PUT", "SESSION", "bytes 3276800-6553599/8388608"},
				{"PUT", "SESSION", "bytes 6553600-8388607/8388608"}, {"POST", msgs + "/DRAFT/send", ""}},
			via: []string{"draft", "session"}},
		{name: "two 2 MiB files: the second after the draft", files: []file{{"a.bin", 2 * mib}, {"b.bin", 2 * mib}},
			want: []wantRequest{{"POST", msgs, ""}, {"POST", msgs + "/DRAFT/attachments", ""}, {"POST", msgs + "/DRAFT/send", ""}},
			via:  []string{"draft", "post"}},
		{name: "a session of exactly one range", files: []file{{"three.bin", 3 * mib}},
			want: []wantRequest{{"POST", msgs, ""}, {"POST", msgs + "/DRAFT/attachments/createUploadSession", ""},
				{"PUT", "SESSION", "bytes 0-3145727/3145728"}, {"POST", msgs + "/DRAFT/send", ""}},
			via: []string{"session"}},
		// Graph takes 4 MB a request, base64 and the body included: beside a 2 MiB body, 1.5 MiB of file
		// (2 MiB in base64) goes in a request of its own.
		{name: "a long body leaves less room inside the draft", html: "<p>" + strings.Repeat("offer ", 2*mib/6) + "</p>",
			files: []file{{"small.pdf", 3 * mib / 2}},
			want:  []wantRequest{{"POST", msgs, ""}, {"POST", msgs + "/DRAFT/attachments", ""}, {"POST", msgs + "/DRAFT/send", ""}},
			via:   []string{"post"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSending(t)
			html := tc.html
			if html == "" {
				html = "<p>Hi</p>"
			}
			j, m := sendWithBody(t, s, html, tc.files)
			if j.Status != delivery.StatusSent {
				t.Fatalf("send: %+v", j)
			}
			sends, err := s.db.RenderSends(context.Background(), m.ID)
			if err != nil || len(sends) != 1 {
				t.Fatalf("render sends %+v, %v", sends, err)
			}
			draft := sends[0].DraftID
			reqs := s.graph.Requests()
			if len(reqs) != len(tc.want) {
				for _, r := range reqs {
					t.Logf("%s %s %s", r.Method, r.Path, r.ContentRange)
				}
				t.Fatalf("graph saw %d requests, want %d", len(reqs), len(tc.want))
			}
			for i, w := range tc.want {
				r := reqs[i]
				path := strings.ReplaceAll(w.path, "DRAFT", draft)
				if w.path == "SESSION" {
					path = "/upload/attachments/a1"
				}
				if r.Method != w.method || r.Path != path || r.ContentRange != w.contentRange {
					t.Errorf("request %d = %s %s %q, want %s %s %q", i, r.Method, r.Path, r.ContentRange, w.method, path, w.contentRange)
				}
				if w.path == "SESSION" {
					if r.Authorization != "" || r.ContentLength <= 0 || (r.ContentLength%m365test.UploadUnit != 0 && i+1 < len(tc.want)-1) {
						t.Errorf("range %d: Authorization %q, %d bytes", i, r.Authorization, r.ContentLength)
					}
				} else if r.Prefer != `IdType="ImmutableId"` || !strings.HasPrefix(r.Authorization, "Bearer ") {
					t.Errorf("request %d: Prefer %q, Authorization %q: want immutable ids and alice's token", i, r.Prefer, r.Authorization)
				}
			}
			got := s.graph.MessageAttachments(draft)
			if len(got) != len(tc.files) {
				t.Fatalf("the sent mail carries %+v, want %d files", got, len(tc.files))
			}
			for i, f := range tc.files {
				if g := got[i]; g.Name != f.name || g.Size != int64(f.size) || g.SHA256 != digest(f.content()) || g.Via != tc.via[i] ||
					g.ContentType != "application/octet-stream" {
					t.Errorf("file %d = %+v, want %s (%d bytes) via %s", i, g, f.name, f.size, tc.via[i])
				}
			}
			if msg, _ := s.graph.Message(draft); msg["isDraft"] != false {
				t.Errorf("the draft was not sent: %v", msg["isDraft"])
			}
		})
	}
}

func TestFailedAttachmentUploadLeavesNoDraft(t *testing.T) {
	s := newSending(t)
	s.graph.Fail(m365test.Fault{Method: "PUT", Path: "/upload/attachments/a1", Times: 1, Status: 400, Code: "ErrorInvalidRequest",
		Message: "The range was refused."})
	j, m := sendWithFiles(t, s, []file{{"large.bin", 4 << 20}})
	if j.Status != delivery.StatusFailed || !strings.Contains(j.Reason, "The range was refused.") {
		t.Fatalf("send: %+v, want FAILED with Graph's reason", j)
	}
	reqs := s.graph.Requests()
	var calls []string
	for _, r := range reqs {
		calls = append(calls, r.Method+" "+r.Path)
	}
	draft, _ := strings.CutPrefix(reqs[1].Path, "/users/alice@contoso.com/messages/")
	draft, _ = strings.CutSuffix(draft, "/attachments/createUploadSession")
	want := []string{"POST /users/alice@contoso.com/messages", "POST /users/alice@contoso.com/messages/" + draft + "/attachments/createUploadSession",
		"PUT /upload/attachments/a1", "DELETE /upload/attachments/a1", "DELETE /users/alice@contoso.com/messages/" + draft}
	if strings.Join(calls, "\n") != strings.Join(want, "\n") {
		t.Fatalf("graph calls:\n%s\nwant\n%s", strings.Join(calls, "\n"), strings.Join(want, "\n"))
	}
	if _, ok := s.graph.Message(draft); ok || s.graph.OpenAttachmentSessions() != 0 {
		t.Fatalf("a half-built draft or an open session was left behind")
	}
	if sends, err := s.db.RenderSends(context.Background(), m.ID); err != nil || len(sends) != 0 {
		t.Fatalf("render sends %+v, %v: no draft should be recorded", sends, err)
	}
}
