package m365test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
)

// UploadUnit is the granularity Graph requires of every upload-session slice but the last (320 KiB).
const UploadUnit = 320 << 10

// DriveFile is a file stored in a user's fake OneDrive; content is kept as a digest, so large uploads
// cost the fake no memory.
type DriveFile struct {
	ID, User, Path, Name, ContentType string
	Size                              int64
	SHA256                            string // hex digest of the content
	Links                             []SharingLink
}

// SharingLink is a link created to a file.
type SharingLink struct {
	Type, Scope, WebURL string
	Expires             string   // expirationDateTime as sent; "" for none
	Recipients          []string // the addresses a "users" link lets in
}

// drive is the fake's OneDrive state; Graph.mu guards it.
type drive struct {
	files      map[string]*DriveFile // by id
	byPath     map[string]string     // lower-cased user + "/" + path -> id
	sessions   map[string]*session   // by id
	sliceFails []sliceFault
	seq        int
}

// session is an upload session: bytes arrive in order, so a running digest stands for the content.
type session struct {
	id, user, folder, name string
	size, received         int64
	digest                 hash.Hash
	cancelled              bool
}

type sliceFault struct {
	start  int64
	status int
}

func (g *Graph) driveRoutes(mux *http.ServeMux) {
	g.drive = &drive{files: map[string]*DriveFile{}, byPath: map[string]string{}, sessions: map[string]*session{}}
	mux.HandleFunc("PUT /v1.0/users/{user}/drive/{rest...}", g.putContent)
	mux.HandleFunc("POST /v1.0/users/{user}/drive/{rest...}", g.drivePost)
	mux.HandleFunc("DELETE /v1.0/users/{user}/drive/items/{id}", g.deleteItem)
	mux.HandleFunc("PUT /upload/{session}", g.putSlice)
	mux.HandleFunc("GET /upload/{session}", g.sessionStatus)
	mux.HandleFunc("DELETE /upload/{session}", g.cancelSession)
}

// binaryBody tells file content (a simple upload or an upload slice) from a JSON body.
func binaryBody(r *http.Request) bool {
	return r.Header.Get("Content-Range") != "" || strings.HasSuffix(r.URL.Path, ":/content")
}

// isUploadURL tells an upload session's pre-authenticated URL, which takes no bearer token.
func isUploadURL(p string) bool { return strings.HasPrefix(p, "/upload/") }

// FailSlice makes the next upload slice starting at byte start fail once with status, as a dropped or
// refused fragment does; the session keeps what it had.
func (g *Graph) FailSlice(start int64, status int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.drive.sliceFails = append(g.drive.sliceFails, sliceFault{start: start, status: status})
}

// DriveFiles returns the files in user's drive.
func (g *Graph) DriveFiles(user string) []DriveFile {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []DriveFile
	for _, f := range g.drive.files {
		if strings.EqualFold(f.User, user) {
			out = append(out, *f)
		}
	}
	return out
}

// OpenSessions counts upload sessions neither completed nor cancelled.
func (g *Graph) OpenSessions() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, s := range g.drive.sessions {
		if !s.cancelled {
			n++
		}
	}
	return n
}

// itemPath splits "root:/a/b/name.ext:/action" into the folder, the name and the action.
func itemPath(rest string) (folder, name, action string, ok bool) {
	p, ok := strings.CutPrefix(rest, "root:/")
	if !ok {
		return "", "", "", false
	}
	i := strings.LastIndex(p, ":/")
	if i < 0 {
		return "", "", "", false
	}
	full, action := p[:i], p[i+2:]
	return path.Dir(full), path.Base(full), action, full != "" && !strings.Contains(full, "..")
}

// store adds a file under folder/name, renamed "name 1.ext", "name 2.ext"… on conflict; g.mu is held.
func (d *drive) store(user, folder, name, contentType string, size int64, sum string) *DriveFile {
	stem, ext := name, path.Ext(name)
	stem = strings.TrimSuffix(name, ext)
	final := name
	for n := 1; ; n++ {
		if _, taken := d.byPath[strings.ToLower(user+"/"+folder+"/"+final)]; !taken {
			break
		}
		final = stem + " " + strconv.Itoa(n) + ext
	}
	d.seq++
	f := &DriveFile{ID: fmt.Sprintf("01BYE5RZ%06dITEM", d.seq), User: user, Path: folder + "/" + final, Name: final,
		ContentType: contentType, Size: size, SHA256: sum}
	d.files[f.ID] = f
	d.byPath[strings.ToLower(user+"/"+f.Path)] = f.ID
	return f
}

func itemJSON(f *DriveFile) map[string]any {
	return map[string]any{"id": f.ID, "name": f.Name, "size": f.Size, "file": map[string]any{"mimeType": f.ContentType},
		"parentReference": map[string]any{"path": "/drive/root:/" + path.Dir(f.Path)}}
}

// putContent is a simple upload: PUT /users/{user}/drive/root:/{path}:/content (up to 4 MiB).
func (g *Graph) putContent(w http.ResponseWriter, r *http.Request) {
	folder, name, action, ok := itemPath(r.PathValue("rest"))
	if !ok || action != "content" {
		graphError(w, http.StatusBadRequest, "invalidRequest", "Invalid request")
		return
	}
	if r.URL.Query().Get("@microsoft.graph.conflictBehavior") != "rename" {
		graphError(w, http.StatusConflict, "nameAlreadyExists", "conflictBehavior must be rename for this fake")
		return
	}
	if r.Header.Get("Content-Encoding") != "" {
		graphError(w, http.StatusBadRequest, "invalidRequest", "file content must not be encoded")
		return
	}
	if r.ContentLength > 4<<20 {
		graphError(w, http.StatusRequestEntityTooLarge, "requestTooLarge", "Use an upload session for files over 4 MB")
		return
	}
	h := sha256.New()
	n, err := io.Copy(h, r.Body)
	if err != nil || n == 0 {
		graphError(w, http.StatusBadRequest, "invalidRequest", "empty or unreadable content")
		return
	}
	g.mu.Lock()
	f := g.drive.store(r.PathValue("user"), folder, name, r.Header.Get("Content-Type"), n, hex.EncodeToString(h.Sum(nil)))
	out := itemJSON(f)
	g.mu.Unlock()
	writeJSON(w, http.StatusCreated, out)
}

// drivePost is createUploadSession (on a path) or createLink (on an item).
func (g *Graph) drivePost(w http.ResponseWriter, r *http.Request) {
	rest := r.PathValue("rest")
	if id, ok := strings.CutSuffix(strings.TrimPrefix(rest, "items/"), "/createLink"); ok && strings.HasPrefix(rest, "items/") {
		g.createLink(w, r, id)
		return
	}
	folder, name, action, ok := itemPath(rest)
	if !ok || action != "createUploadSession" {
		graphError(w, http.StatusBadRequest, "invalidRequest", "Invalid request")
		return
	}
	var body struct {
		Item map[string]any `json:"item"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Item["@microsoft.graph.conflictBehavior"] != "rename" {
		graphError(w, http.StatusBadRequest, "invalidRequest", "item.@microsoft.graph.conflictBehavior must be rename")
		return
	}
	g.mu.Lock()
	g.drive.seq++
	s := &session{id: fmt.Sprintf("s%d", g.drive.seq), user: r.PathValue("user"), folder: folder, name: name, size: -1, digest: sha256.New()}
	g.drive.sessions[s.id] = s
	g.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"uploadUrl": g.srv.URL + "/upload/" + s.id,
		"expirationDateTime": time.Now().Add(time.Hour).UTC().Format(time.RFC3339), "nextExpectedRanges": []string{"0-"}})
}

// putSlice takes one fragment: bytes start-end/size, in order, every one but the last a multiple of 320 KiB.
func (g *Graph) putSlice(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "" {
		graphError(w, http.StatusUnauthorized, "unauthenticated", "The upload URL is pre-authenticated: send no Authorization header")
		return
	}
	var start, end, size int64
	if _, err := fmt.Sscanf(r.Header.Get("Content-Range"), "bytes %d-%d/%d", &start, &end, &size); err != nil ||
		end < start || end >= size || r.ContentLength != end-start+1 {
		graphError(w, http.StatusBadRequest, "invalidRange", "Bad Content-Range or Content-Length")
		return
	}
	g.mu.Lock()
	s, ok := g.drive.sessions[r.PathValue("session")]
	var fault *sliceFault
	for i, f := range g.drive.sliceFails {
		if ok && f.start == start {
			fault = &f
			g.drive.sliceFails = append(g.drive.sliceFails[:i], g.drive.sliceFails[i+1:]...)
			break
		}
	}
	g.mu.Unlock()
	switch {
	case !ok || s.cancelled:
		graphError(w, http.StatusNotFound, "itemNotFound", "The upload session was not found")
		return
	case fault != nil:
		_, _ = io.Copy(io.Discard, r.Body)
		graphError(w, fault.status, "serviceError", "The fragment was not stored")
		return
	case start != s.received || (s.size >= 0 && size != s.size):
		graphError(w, http.StatusRequestedRangeNotSatisfiable, "invalidRange", fmt.Sprintf("Expected bytes from %d", s.received))
		return
	case end+1 < size && (end-start+1)%UploadUnit != 0:
		graphError(w, http.StatusBadRequest, "invalidRange", "Fragments must be multiples of 320 KiB")
		return
	}
	n, err := io.Copy(s.digest, r.Body)
	if err != nil || n != end-start+1 {
		graphError(w, http.StatusBadRequest, "invalidRequest", "fragment body shorter than its range")
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	s.size, s.received = size, end+1
	if s.received < size {
		writeJSON(w, http.StatusAccepted, map[string]any{"expirationDateTime": time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
			"nextExpectedRanges": []string{fmt.Sprintf("%d-", s.received)}})
		return
	}
	delete(g.drive.sessions, s.id)
	f := g.drive.store(s.user, s.folder, s.name, "application/octet-stream", size, hex.EncodeToString(s.digest.Sum(nil)))
	writeJSON(w, http.StatusCreated, itemJSON(f))
}

func (g *Graph) sessionStatus(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	s, ok := g.drive.sessions[r.PathValue("session")]
	var ranges []string
	if ok {
		ranges = []string{fmt.Sprintf("%d-", s.received)}
		if s.size > 0 {
			ranges = []string{fmt.Sprintf("%d-%d", s.received, s.size-1)}
		}
	}
	g.mu.Unlock()
	if !ok || s.cancelled {
		graphError(w, http.StatusNotFound, "itemNotFound", "The upload session was not found")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"expirationDateTime": time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
		"nextExpectedRanges": ranges})
}

func (g *Graph) cancelSession(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	s, ok := g.drive.sessions[r.PathValue("session")]
	if ok {
		s.cancelled = true
	}
	g.mu.Unlock()
	if !ok {
		graphError(w, http.StatusNotFound, "itemNotFound", "The upload session was not found")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (g *Graph) createLink(w http.ResponseWriter, r *http.Request, id string) {
	var body struct {
		Type, Scope, ExpirationDateTime string
		Recipients                      []struct{ Email string }
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Type != "view" ||
		(body.Scope != "anonymous" && body.Scope != "organization" && body.Scope != "users") {
		graphError(w, http.StatusBadRequest, "invalidRequest", "type must be view and scope anonymous, organization or users")
		return
	}
	var recipients []string
	for _, rc := range body.Recipients {
		if !strings.Contains(rc.Email, "@") {
			graphError(w, http.StatusBadRequest, "invalidRequest", "every recipient needs an email address")
			return
		}
		recipients = append(recipients, rc.Email)
	}
	if body.Scope == "users" && len(recipients) == 0 {
		graphError(w, http.StatusBadRequest, "invalidRequest", "a users link needs recipients")
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	f, ok := g.drive.files[id]
	if !ok || !strings.EqualFold(f.User, r.PathValue("user")) {
		graphError(w, http.StatusNotFound, "itemNotFound", "The resource could not be found.")
		return
	}
	link := SharingLink{Type: body.Type, Scope: body.Scope, Expires: body.ExpirationDateTime, Recipients: recipients,
		WebURL: fmt.Sprintf("https://contoso-my.sharepoint.com/:b:/g/personal/%s/%s-%d", domainOf(f.User), f.ID, len(f.Links))}
	f.Links = append(f.Links, link)
	writeJSON(w, http.StatusCreated, map[string]any{"id": fmt.Sprintf("perm%d", len(f.Links)), "roles": []string{"read"},
		"link": map[string]any{"type": link.Type, "scope": link.Scope, "webUrl": link.WebURL}})
}

func (g *Graph) deleteItem(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f, ok := g.drive.files[r.PathValue("id")]
	if !ok || !strings.EqualFold(f.User, r.PathValue("user")) {
		graphError(w, http.StatusNotFound, "itemNotFound", "The resource could not be found.")
		return
	}
	delete(g.drive.files, f.ID)
	delete(g.drive.byPath, strings.ToLower(f.User+"/"+f.Path))
	w.WriteHeader(http.StatusNoContent)
}
