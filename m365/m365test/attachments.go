package m365test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strings"
	"time"
)

// Limits Graph applies to a message's file attachments.
const (
	// MaxAttachmentPost is the largest file Graph takes in one request (a draft's body or POST .../attachments).
	MaxAttachmentPost = 3 << 20
	// MaxAttachmentSlice is the largest byte range one attachment upload-session PUT may carry.
	MaxAttachmentSlice = 4 << 20
	// MaxAttachmentSession is the largest file an attachment upload session takes.
	MaxAttachmentSession = 150 << 20
	// MaxRequest is the largest request body Graph takes (4 MB), base64 and JSON included: a draft
	// whose body and inline files together pass it is refused.
	MaxRequest = 4 << 20
)

// tooLarge answers 413, as Graph does, to a request body over MaxRequest.
func tooLarge(w http.ResponseWriter, r *http.Request) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxRequest+1))
	if err == nil && len(body) <= MaxRequest {
		r.Body = io.NopCloser(bytes.NewReader(body))
		return false
	}
	graphError(w, http.StatusRequestEntityTooLarge, "ErrorRequestEntityTooLarge", "The request is over 4 MB.")
	return true
}

// MessageAttachment is a file attached to a message held by the fake; content is kept as a digest.
type MessageAttachment struct {
	Name, ContentType string
	Size              int64
	SHA256            string // hex digest of the content
	Via               string // "draft" (in the create-draft body), "post" (POST .../attachments) or "session"
}

// attachSession is an Outlook attachment upload session: bytes arrive in order, so a running digest
// stands for the content.
type attachSession struct {
	user, message, name, contentType string
	size, received                   int64
	digest                           hash.Hash
}

// attachState is the fake's attachment upload sessions; Graph.mu guards it.
type attachState struct {
	sessions map[string]*attachSession
	seq      int
}

func (g *Graph) attachmentRoutes(mux *http.ServeMux) {
	g.attach = &attachState{sessions: map[string]*attachSession{}}
	mux.HandleFunc("POST /v1.0/users/{user}/messages/{id}/attachments", g.postAttachment)
	mux.HandleFunc("POST /v1.0/users/{user}/messages/{id}/attachments/createUploadSession", g.createAttachmentSession)
	mux.HandleFunc("PUT /upload/attachments/{session}", g.putAttachmentSlice)
	mux.HandleFunc("DELETE /upload/attachments/{session}", g.cancelAttachmentSession)
	mux.HandleFunc("DELETE /v1.0/users/{user}/messages/{id}", g.deleteMessage)
}

// MessageAttachments returns the files attached to a message, in the order they were attached.
func (g *Graph) MessageAttachments(id string) []MessageAttachment {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []MessageAttachment
	for _, a := range asSlice(g.messages[id]["attachments"]) {
		am, _ := a.(map[string]any)
		name, _ := am["name"].(string)
		ct, _ := am["contentType"].(string)
		if b64, ok := am["contentBytes"].(string); ok { // sent in the create-draft body
			raw, _ := base64.StdEncoding.DecodeString(b64)
			sum := sha256.Sum256(raw)
			out = append(out, MessageAttachment{Name: name, ContentType: ct, Size: int64(len(raw)), SHA256: hex.EncodeToString(sum[:]), Via: "draft"})
			continue
		}
		size, _ := am["size"].(int64)
		sum, _ := am["sha256"].(string)
		via, _ := am["via"].(string)
		out = append(out, MessageAttachment{Name: name, ContentType: ct, Size: size, SHA256: sum, Via: via})
	}
	return out
}

// OpenAttachmentSessions counts attachment upload sessions neither completed nor cancelled.
func (g *Graph) OpenAttachmentSessions() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.attach.sessions)
}

// draft returns user's unsent message id, or writes Graph's refusal; g.mu is held.
func (g *Graph) draft(w http.ResponseWriter, user, id string) (map[string]any, bool) {
	msg, ok := g.messages[id]
	if !ok || g.owners[id] != strings.ToLower(user) {
		graphError(w, http.StatusNotFound, "ErrorItemNotFound", "The specified object was not found in the store.")
		return nil, false
	}
	if msg["isDraft"] != true {
		graphError(w, http.StatusForbidden, "ErrorAccessDenied", "Attachments can only be added to a draft.")
		return nil, false
	}
	return msg, true
}

// postAttachment adds a fileAttachment whose content comes base64-encoded in the request (under 3 MB).
func (g *Graph) postAttachment(w http.ResponseWriter, r *http.Request) {
	if tooLarge(w, r) {
		return
	}
	var body struct {
		Type         string `json:"@odata.type"`
		Name         string `json:"name"`
		ContentType  string `json:"contentType"`
		ContentBytes string `json:"contentBytes"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Type != "#microsoft.graph.fileAttachment" || body.Name == "" {
		graphError(w, http.StatusBadRequest, "ErrorInvalidRequest", "A fileAttachment with a name is required.")
		return
	}
	raw, err := base64.StdEncoding.DecodeString(body.ContentBytes)
	switch {
	case err != nil || len(raw) == 0:
		graphError(w, http.StatusBadRequest, "ErrorInvalidRequest", "contentBytes must be non-empty base64.")
		return
	case len(raw) >= MaxAttachmentPost:
		graphError(w, http.StatusRequestEntityTooLarge, "ErrorRequestEntityTooLarge", "Use an upload session for attachments of 3 MB or more.")
		return
	}
	sum := sha256.Sum256(raw)
	g.mu.Lock()
	defer g.mu.Unlock()
	msg, ok := g.draft(w, r.PathValue("user"), r.PathValue("id"))
	if !ok {
		return
	}
	a := g.addAttachment(msg, body.Name, body.ContentType, int64(len(raw)), hex.EncodeToString(sum[:]), "post")
	writeJSON(w, http.StatusCreated, a)
}

// addAttachment appends a file to msg and returns Graph's view of it; g.mu is held.
func (g *Graph) addAttachment(msg map[string]any, name, contentType string, size int64, sum, via string) map[string]any {
	g.seq++
	a := map[string]any{"@odata.type": "#microsoft.graph.fileAttachment", "id": fmt.Sprintf("AAMkATT%06d=", g.seq),
		"name": name, "contentType": contentType, "size": size, "isInline": false, "sha256": sum, "via": via}
	msg["attachments"] = append(asSlice(msg["attachments"]), a)
	return map[string]any{"@odata.type": a["@odata.type"], "id": a["id"], "name": name, "contentType": contentType, "size": size, "isInline": false}
}

// createAttachmentSession opens an upload session for a file of 3 MB to 150 MB.
func (g *Graph) createAttachmentSession(w http.ResponseWriter, r *http.Request) {
	var body struct {
		AttachmentItem struct {
			AttachmentType string `json:"attachmentType"`
			Name           string `json:"name"`
			Size           int64  `json:"size"`
			ContentType    string `json:"contentType"`
		} `json:"AttachmentItem"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.AttachmentItem.AttachmentType != "file" ||
		body.AttachmentItem.Name == "" || body.AttachmentItem.Size <= 0 {
		graphError(w, http.StatusBadRequest, "ErrorInvalidRequest", "AttachmentItem needs attachmentType file, a name and a size.")
		return
	}
	if body.AttachmentItem.Size > MaxAttachmentSession {
		graphError(w, http.StatusRequestEntityTooLarge, "ErrorAttachmentSizeLimitExceeded", "The attachment is over 150 MB.")
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.draft(w, r.PathValue("user"), r.PathValue("id")); !ok {
		return
	}
	g.attach.seq++
	id := fmt.Sprintf("a%d", g.attach.seq)
	it := body.AttachmentItem
	g.attach.sessions[id] = &attachSession{user: r.PathValue("user"), message: r.PathValue("id"), name: it.Name,
		contentType: it.ContentType, size: it.Size, digest: sha256.New()}
	writeJSON(w, http.StatusCreated, map[string]any{
		"@odata.context":     "https://graph.microsoft.com/v1.0/$metadata#microsoft.graph.uploadSession",
		"uploadUrl":          g.srv.URL + "/upload/attachments/" + id,
		"expirationDateTime": time.Now().Add(time.Hour).UTC().Format(time.RFC3339), "nextExpectedRanges": []string{"0-"}})
}

// putAttachmentSlice takes one byte range, in order, every one but the last a multiple of 320 KiB and
// none over 4 MiB; the last answers 201 with the attachment's location and no body, as Outlook does.
func (g *Graph) putAttachmentSlice(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "" {
		graphError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "The upload URL carries its own token: send no Authorization header")
		return
	}
	var start, end, size int64
	if _, err := fmt.Sscanf(r.Header.Get("Content-Range"), "bytes %d-%d/%d", &start, &end, &size); err != nil ||
		end < start || end >= size || r.ContentLength != end-start+1 || r.Header.Get("Content-Encoding") != "" {
		graphError(w, http.StatusBadRequest, "ErrorInvalidRequest", "Bad Content-Range, Content-Length or an encoded body")
		return
	}
	g.mu.Lock()
	s, ok := g.attach.sessions[r.PathValue("session")]
	g.mu.Unlock()
	switch {
	case !ok:
		graphError(w, http.StatusNotFound, "ErrorItemNotFound", "The upload session was not found")
		return
	case start != s.received || size != s.size:
		graphError(w, http.StatusRequestedRangeNotSatisfiable, "ErrorInvalidRange", fmt.Sprintf("Expected bytes from %d of %d", s.received, s.size))
		return
	case end-start+1 > MaxAttachmentSlice || (end+1 < size && (end-start+1)%UploadUnit != 0):
		graphError(w, http.StatusBadRequest, "ErrorInvalidRange", "Ranges must be multiples of 320 KiB, at most 4 MiB")
		return
	}
	n, err := io.Copy(s.digest, r.Body)
	if err != nil || n != end-start+1 {
		graphError(w, http.StatusBadRequest, "ErrorInvalidRequest", "range body shorter than its range")
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	s.received = end + 1
	if s.received < size {
		writeJSON(w, http.StatusOK, map[string]any{"expirationDateTime": time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
			"nextExpectedRanges": []string{fmt.Sprintf("%d-%d", s.received, size-1)}})
		return
	}
	delete(g.attach.sessions, r.PathValue("session"))
	msg, ok := g.messages[s.message]
	if !ok {
		graphError(w, http.StatusNotFound, "ErrorItemNotFound", "The message was deleted during the upload")
		return
	}
	a := g.addAttachment(msg, s.name, s.contentType, size, hex.EncodeToString(s.digest.Sum(nil)), "session")
	w.Header().Set("Location", g.srv.URL+"/v1.0/users/"+s.user+"/messages/"+s.message+"/attachments/"+a["id"].(string))
	w.WriteHeader(http.StatusCreated)
}

func (g *Graph) cancelAttachmentSession(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.attach.sessions[r.PathValue("session")]; !ok {
		graphError(w, http.StatusNotFound, "ErrorItemNotFound", "The upload session was not found")
		return
	}
	delete(g.attach.sessions, r.PathValue("session"))
	w.WriteHeader(http.StatusNoContent)
}

// deleteMessage deletes a message (a draft whose attachments could not all be added).
func (g *Graph) deleteMessage(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	id := r.PathValue("id")
	if _, ok := g.messages[id]; !ok || g.owners[id] != strings.ToLower(r.PathValue("user")) {
		graphError(w, http.StatusNotFound, "ErrorItemNotFound", "The specified object was not found in the store.")
		return
	}
	delete(g.messages, id)
	delete(g.owners, id)
	w.WriteHeader(http.StatusNoContent)
}
