package server_test

import (
	"bytes"
	"html"
	"io"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var outboxFileRe = regexp.MustCompile(`href="(/outbox/[^"/]+/files/\d+)"[^>]*>([^<]+)</a>`)

// sendToOutbox sends message id now as rep and returns its outbox mails by recipient address.
func (e *engage) sendToOutbox(t *testing.T, id string) map[string]string {
	t.Helper()
	var sent struct{ SendMessage sendOut }
	e.mustGQL(t, rep, `mutation($id: ID!) { sendMessage(id: $id) { `+sendFields+` } }`, map[string]any{"id": id}, &sent)
	if sent.SendMessage.Status != "SENT" {
		t.Fatalf("sendMessage answered %+v", sent.SendMessage)
	}
	var box outboxOut
	e.mustGQL(t, rep, `{ outbox { id messageId to url } }`, nil, &box)
	urls := map[string]string{}
	for _, o := range box.Outbox {
		if o.MessageID == id {
			urls[strings.Join(o.To, ",")] = o.URL
		}
	}
	return urls
}

// outboxMailFiles reads an outbox mail as a browser does and downloads each file it lists, by name.
func (e *engage) outboxMailFiles(t *testing.T, url string) (string, map[string][]byte) {
	t.Helper()
	res := get(t, "GET", e.URL+url, "Mozilla/5.0")
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, res.StatusCode)
	}
	files := map[string][]byte{}
	for _, m := range outboxFileRe.FindAllStringSubmatch(string(page), -1) {
		res := get(t, "GET", e.URL+m[1], "Mozilla/5.0")
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		disp, params, err := mime.ParseMediaType(res.Header.Get("Content-Disposition"))
		if res.StatusCode != http.StatusOK || res.Header.Get("X-Content-Type-Options") != "nosniff" || err != nil ||
			disp != "attachment" || params["filename"] != html.UnescapeString(m[2]) {
			t.Fatalf("download %s: %d %v", m[1], res.StatusCode, res.Header)
		}
		files[html.UnescapeString(m[2])] = body
	}
	return string(page), files
}

func TestOutboxMailsCarryTheFilesNotSharedAsTrackedLinks(t *testing.T) {
	terms := []byte("Terms and conditions apply.")
	const ann, bob = "ann@fabrikam.com", "bob@fabrikam.com"
	type mail struct {
		attached []string // file names attached to the mail itself, sorted
		link     bool     // the followed file appears as a tracked link
	}
	cases := []struct {
		name       string
		doNotAllow bool
		later      bool // the preference comes after the files, and retryFollow renders the message again
		individual bool
		to         []string
		want       map[string]mail // by recipient
	}{
		{name: "followed recipients get the followed file as a link", individual: true, to: []string{ann, bob},
			want: map[string]mail{ann: {[]string{"terms.txt"}, true}, bob: {[]string{"terms.txt"}, true}}},
		{name: "a message not followed attaches every file", doNotAllow: true, to: []string{ann},
			want: map[string]mail{ann: {[]string{"Q3 offer.pdf", "terms.txt"}, false}}},
		{name: "the untracked copy of an individual message attaches every file", doNotAllow: true, individual: true, to: []string{ann, bob},
			want: map[string]mail{ann: {[]string{"Q3 offer.pdf", "terms.txt"}, false}, bob: {[]string{"terms.txt"}, true}}},
		{name: "a copy untracked after the upload attaches every file", doNotAllow: true, later: true, individual: true, to: []string{ann, bob},
			want: map[string]mail{ann: {[]string{"Q3 offer.pdf", "terms.txt"}, false}, bob: {[]string{"terms.txt"}, true}}},
		{name: "a message no longer followed after the upload attaches every file", doNotAllow: true, later: true, to: []string{ann},
			want: map[string]mail{ann: {[]string{"Q3 offer.pdf", "terms.txt"}, false}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := start(t)
			if tc.doNotAllow && !tc.later {
				e.setPreference(t, ann, "DO_NOT_ALLOW")
			}
			id := e.follow(t, rep, tc.individual, "<p>Hi</p>", tc.to...).FollowMessage.ID
			e.mustUpload(t, rep, id, "Q3 offer.pdf", pdf, true)
			e.mustUpload(t, rep, id, "terms.txt", terms, false)
			if tc.later {
				e.setPreference(t, ann, "DO_NOT_ALLOW")
				e.mustGQL(t, rep, `mutation($id: ID!) { retryFollow(id: $id) { id } }`, map[string]any{"id": id}, nil)
			}
			urls := e.sendToOutbox(t, id)
			if len(urls) != len(tc.want) {
				t.Fatalf("outbox mails %v, want one to each of %d recipients", urls, len(tc.want))
			}
			content := map[string][]byte{"Q3 offer.pdf": pdf, "terms.txt": terms}
			for to, want := range tc.want {
				url, ok := urls[to]
				if !ok {
					t.Fatalf("no outbox mail to %s in %v", to, urls)
				}
				page, files := e.outboxMailFiles(t, url)
				var names []string
				for name, body := range files {
					names = append(names, name)
					if !bytes.Equal(body, content[name]) {
						t.Errorf("mail to %s: %s downloads %d bytes that are not the file", to, name, len(body))
					}
				}
				slices.Sort(names)
				if !slices.Equal(names, want.attached) {
					t.Errorf("mail to %s attaches %v, want %v", to, names, want.attached)
				}
				if link := attachmentHrefRe.MatchString(page); link != want.link {
					t.Errorf("mail to %s has a tracked file link: %v, want %v\n%s", to, link, want.link, page)
				}
				if res := get(t, "GET", e.URL+url+"/files/7", "Mozilla/5.0"); res.StatusCode != http.StatusNotFound {
					t.Errorf("a file index the mail does not have: %d, want 404", res.StatusCode)
				}
			}
		})
	}
}
