package server

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"

	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/graph"
)

// filesPath is where local mode serves shared files; attachments' LocalDrive makes its links under it.
const filesPath = "/files/"

// fileRoutes serves local mode's shared files. A download carries no tracking: the tracked link in
// the mail recorded the open before redirecting here.
func (s *Server) fileRoutes(mux *http.ServeMux) {
	if s.deps.Files != nil {
		mux.Handle("GET "+filesPath+"{token}", s.deps.Files)
	}
}

// isUpload tells a GraphQL multipart request (a file upload) from every other request.
func isUpload(r *http.Request) bool {
	if r.Method != http.MethodPost || r.URL.Path != "/graphql" {
		return false
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "multipart/form-data"
}

// bodyLimit is the largest body r may have: uploads get UploadLimit, everything else BodyLimit.
func (s *Server) bodyLimit(r *http.Request) int64 {
	if isUpload(r) {
		return s.opts.UploadLimit
	}
	return s.opts.BodyLimit
}

// tooLarge answers 413; an upload gets it as a GraphQL error, so clients read it like any other.
func tooLarge(w http.ResponseWriter, r *http.Request, limit int64) {
	msg := fmt.Sprintf("request body over the limit of %d bytes", limit)
	if !isUpload(r) {
		http.Error(w, msg, http.StatusRequestEntityTooLarge)
		return
	}
	uploadError(w, http.StatusRequestEntityTooLarge, graph.CodePayloadTooLarge,
		fmt.Sprintf("the upload is %s, over the limit of %s", followed.FileSize(r.ContentLength), followed.FileSize(limit)))
}

// uploadGuard refuses an upload of unknown length: gqlgen's multipart transport reads such a body into
// memory, and memory must stay bounded whatever the size, so clients must send a Content-Length.
func uploadGuard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isUpload(r) && r.ContentLength < 0 {
			uploadError(w, http.StatusLengthRequired, graph.CodeBadUserInput, "a file upload needs a Content-Length header")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func uploadError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Connection", "close") // the rest of the body is not read
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []any{map[string]any{"message": msg,
		"extensions": map[string]any{"code": code}}}})
}
