package attachments_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/engage-email/engage/attachments"
	"github.com/engage-email/engage/auth"
	"github.com/engage-email/engage/consent"
	"github.com/engage-email/engage/delivery"
	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/store/sqlite"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

type env struct {
	followed *followed.Service
	files    *attachments.Service
	db       *sqlite.DB
	drive    *attachments.LocalDrive
	blobs    *attachments.Dir
}

var rep = auth.Identity{Email: "rep@contoso.com"}

func newEnv(t *testing.T) env {
	t.Helper()
	db := sqlite.OpenTemp(t)
	keys, err := followed.NewKeyRing(followed.Key{ID: "k1", Secret: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := followed.NewService(db, keys, "https://engage.example.com", followed.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	blobs, err := attachments.NewDir(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	drive, err := attachments.NewLocalDrive(filepath.Join(dir, "drive"), "https://engage.example.com", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	files := attachments.New(db, db, svc, drive, blobs, nil, attachments.Options{MaxBytes: 1 << 20,
		Now: func() time.Time { return time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC) }})
	svc.SetFiles(files)
	return env{followed: svc, files: files, db: db, drive: drive, blobs: blobs}
}

func upload(name string, content []byte) attachments.Upload {
	return attachments.Upload{Name: name, Size: int64(len(content)), Content: bytes.NewReader(content)}
}

// tokenRe finds tracking tokens and local links, which carry random ids.
var tokenRe = regexp.MustCompile(`(/t/[a-z]/|/files/)[A-Za-z0-9_-]+`)

// The attachment block each tracked render ends with, as a recipient's mail client sees it.
func TestRenderedBlockGolden(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	m, err := e.followed.Follow(ctx, rep, followed.FollowInput{Subject: "Offer", Follow: true,
		HTML:       `<html><body><p>Hi Ann, the offer & terms are attached.</p></body></html>`,
		Recipients: []followed.Recipient{{Email: "ann@fabrikam.com"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name    string
		content []byte
		follow  bool
	}{
		{"Q3 offer.pdf", append([]byte("%PDF-1.7\n"), make([]byte, 700<<10)...), true},
		{`<script>.html`, []byte("<html>x</html>"), true},
		{"terms.txt", []byte("Terms apply."), false},
	} {
		if _, err := e.files.Add(ctx, rep, m.ID, upload(f.name, f.content), f.follow); err != nil {
			t.Fatal(err)
		}
	}
	rs, err := e.db.Renders(ctx, m.ID)
	if err != nil || len(rs) != 1 {
		t.Fatalf("renders %v, %v", rs, err)
	}
	got := tokenRe.ReplaceAllString(rs[0].HTML, "${1}TOKEN")
	path := filepath.Join("testdata", "render.golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Fatalf("render differs from %s (go test -run RenderedBlockGolden -update):\n%s", path, got)
	}
}

// Direct names what delivery attaches: unfollowed files to tracked renders, every file to an untracked copy.
func TestDirectFilesForDelivery(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	m, err := e.followed.Follow(ctx, rep, followed.FollowInput{Subject: "Offer", Follow: true, HTML: "<p>Hi</p>",
		Recipients: []followed.Recipient{{Email: "ann@fabrikam.com"}}})
	if err != nil {
		t.Fatal(err)
	}
	shared, err := e.files.Add(ctx, rep, m.ID, upload("offer.pdf", []byte("%PDF-1.7 offer")), true)
	if err != nil {
		t.Fatal(err)
	}
	direct, err := e.files.Add(ctx, rep, m.ID, upload("terms.txt", []byte("Terms apply.")), false)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		tracked bool
		want    []string
	}{
		{"tracked render", true, []string{direct.ID}},
		// The shared file kept a copy, though every render was tracked when it came: a render may turn
		// untracked before the send.
		{"untracked copy", false, []string{shared.ID, direct.ID}},
	}
	content := map[string]string{shared.ID: "%PDF-1.7 offer", direct.ID: "Terms apply."}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.files.Direct(ctx, m.ID, tc.tracked)
			if err != nil || len(got) != len(tc.want) {
				t.Fatalf("Direct = %+v, %v; want %v", got, err, tc.want)
			}
			for i, a := range got {
				if a.ID != tc.want[i] {
					t.Fatalf("Direct = %+v; want %v", got, tc.want)
				}
				rc, err := e.files.Content(ctx, a)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(rc)
				rc.Close()
				if string(b) != content[a.ID] {
					t.Fatalf("content of %s: %q", a.Name, b)
				}
			}
		})
	}
}

// sendStarts is the followed service as attachments sees it, but a send of the message is claimed just
// before each rerender: the interleaving in which a removal used to lose its file from mail already out.
type sendStarts struct {
	t   *testing.T
	svc *followed.Service
	db  *sqlite.DB
}

func (s sendStarts) Rerender(ctx context.Context, id string) (followed.Message, error) {
	at := time.Now().Add(-time.Minute)
	if err := s.db.CreateJob(ctx, delivery.Job{MessageID: id, Owner: rep.Email, Status: delivery.StatusScheduled,
		ScheduledAt: at, DueAt: at, CreatedAt: at}); err != nil {
		s.t.Fatal(err)
	}
	if js, err := s.db.ClaimDueJobs(ctx, "w1", time.Now(), time.Minute, 1); err != nil || len(js) != 1 {
		s.t.Fatalf("claim: %v, %v", js, err)
	}
	return s.svc.Rerender(ctx, id)
}

// A removal whose rerender is refused, because the send started in between, leaves the file listed,
// in the renders and stored: the mail going out links to it.
func TestRemoveWhileTheSendStarts(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	m, err := e.followed.Follow(ctx, rep, followed.FollowInput{Subject: "Offer", Follow: true, HTML: "<p>Hi</p>",
		Recipients: []followed.Recipient{{Email: "ann@fabrikam.com"}}})
	if err != nil {
		t.Fatal(err)
	}
	a, err := e.files.Add(ctx, rep, m.ID, upload("offer.pdf", []byte("%PDF-1.7 offer")), true)
	if err != nil {
		t.Fatal(err)
	}
	racing := attachments.New(e.db, e.db, sendStarts{t, e.followed, e.db}, e.drive, e.blobs, nil, attachments.Options{MaxBytes: 1 << 20})
	if _, err := racing.Remove(ctx, rep, a.ID); !errors.Is(err, attachments.ErrSent) {
		t.Fatalf("remove: %v, want ErrSent", err)
	}
	list, err := e.files.List(ctx, m.ID)
	if err != nil || len(list) != 1 || list[0].ID != a.ID || list[0].Index != a.Index {
		t.Fatalf("attachments after the refused removal: %+v, %v", list, err)
	}
	rs, err := e.db.Renders(ctx, m.ID)
	if err != nil || len(rs) != 1 || !strings.Contains(rs[0].HTML, "offer.pdf") {
		t.Fatalf("renders: %+v, %v; want the file still listed", rs, err)
	}
	rc, err := e.files.Content(ctx, list[0])
	if err != nil {
		t.Fatalf("the file's copy is gone: %v", err)
	}
	rc.Close()
	res := httptest.NewRecorder()
	e.drive.ServeHTTP(res, httptest.NewRequest("GET", a.ShareURL, nil))
	if res.Code != http.StatusOK || res.Body.String() != "%PDF-1.7 offer" {
		t.Fatalf("the shared file's link answers %d %q", res.Code, res.Body.String())
	}
}

// The files a mail carries itself are bounded together, so that a send does not fail at Exchange long
// after the uploads were accepted; files shared as links do not count.
func TestFilesAttachedToTheMailAreBoundedTogether(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	files := attachments.New(e.db, e.db, e.followed, e.drive, e.blobs, nil, attachments.Options{MaxBytes: 1 << 20, MaxMailBytes: 30})
	m, err := e.followed.Follow(ctx, rep, followed.FollowInput{Subject: "Offer", Follow: true, HTML: "<p>Hi</p>",
		Recipients: []followed.Recipient{{Email: "ann@fabrikam.com"}}})
	if err != nil {
		t.Fatal(err)
	}
	twenty := []byte("twenty bytes of text")
	steps := []struct {
		name   string
		follow bool
		refuse bool
	}{
		{"a first file on the mail", false, false},
		{"a followed file goes as a link", true, false},
		{"a second file on the mail passes the bound", false, true},
	}
	for i, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			_, err := files.Add(ctx, rep, m.ID, upload(fmt.Sprintf("f%d.txt", i), twenty), st.follow)
			if st.refuse != errors.Is(err, attachments.ErrTooLarge) || (!st.refuse && err != nil) {
				t.Fatalf("add: %v, want refused: %v", err, st.refuse)
			}
			if st.refuse && !strings.Contains(err.Error(), "would total 40 B, over the limit of 30 B") {
				t.Fatalf("the refusal does not say why: %v", err)
			}
		})
	}
	if list, _ := files.List(ctx, m.ID); len(list) != 2 {
		t.Fatalf("%d attachments kept, want the first two", len(list))
	}
}

// A message with an untracked copy (a recipient who may not be followed) mails every file itself to
// that recipient, followed ones too: they count against the bound then.
func TestFilesOfAnUntrackedCopyAreBoundedTogether(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	consents, err := consent.NewService(ctx, e.db, consent.Options{Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	admin := auth.Identity{Email: "admin@contoso.com", Admin: true}
	if _, err := consents.SetPreference(ctx, admin, "bob@fabrikam.com", consent.DoNotAllow, ""); err != nil {
		t.Fatal(err)
	}
	e.followed.SetGate(consents)
	files := attachments.New(e.db, e.db, e.followed, e.drive, e.blobs, consents, attachments.Options{MaxBytes: 1 << 20, MaxMailBytes: 30})
	m, err := e.followed.Follow(ctx, rep, followed.FollowInput{Subject: "Offer", Follow: true, HTML: "<p>Hi</p>", Individual: true,
		Recipients: []followed.Recipient{{Email: "ann@fabrikam.com"}, {Email: "bob@fabrikam.com"}}})
	if err != nil {
		t.Fatal(err)
	}
	twenty := []byte("twenty bytes of text")
	if a, err := files.Add(ctx, rep, m.ID, upload("f0.txt", twenty), true); err != nil || !a.Shared {
		t.Fatalf("first followed file: %+v, %v", a, err)
	}
	if _, err := files.Add(ctx, rep, m.ID, upload("f1.txt", twenty), true); !errors.Is(err, attachments.ErrTooLarge) {
		t.Fatalf("a second followed file, mailed itself to bob with the first: %v, want ErrTooLarge", err)
	}
}
