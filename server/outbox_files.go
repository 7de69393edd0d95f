package server

import (
	"errors"
	"html/template"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/engage-email/engage/delivery"
	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/graph"
)

// outboxFilesBlock follows an outbox mail's body when it carries files, as a mail client lists them
// under the message. Links open outside the mail's sandbox, where a download is allowed.
var outboxFilesBlock = template.Must(template.New("files").Funcs(template.FuncMap{
	"size": followed.FileSize,
}).Parse(`
<hr><p>Attached to this mail:</p><ul>
{{range $i, $f := .Files}}<li><a href="` + graph.OutboxPath + `{{$.ID}}/files/{{$i}}" target="_blank" rel="noopener">{{$f.Name}}</a> ({{size $f.Size}})</li>
{{end}}</ul>
`))

// outboxFileRoutes serves the files outbox mails carry, from the attachment store.
func (s *Server) outboxFileRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+graph.OutboxPath+"{id}/files/{n}", s.outboxFile)
}

// writeOutboxFiles lists e's files after its body; a mail without files is served as it was sent.
func (s *Server) writeOutboxFiles(w http.ResponseWriter, r *http.Request, e delivery.OutboxEntry) {
	if len(e.Files) == 0 {
		return
	}
	if err := outboxFilesBlock.Execute(w, e); err != nil {
		s.deps.Log.WarnContext(r.Context(), "outbox file list not written", "err", err)
	}
}

// outboxFile downloads one file of an outbox mail, as the recipient would save it from the mail.
func (s *Server) outboxFile(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil {
		http.Error(w, "no such file in this mail", http.StatusNotFound)
		return
	}
	var files delivery.Files
	if s.deps.Resolver.Attachments != nil {
		files = s.deps.Resolver.Attachments
	}
	f, content, err := s.deps.Resolver.LocalOutbox.File(r.Context(), files, r.PathValue("id"), n)
	if errors.Is(err, followed.ErrNotFound) {
		http.Error(w, "no such file in the outbox", http.StatusNotFound)
		return
	}
	if err != nil {
		s.deps.Log.ErrorContext(r.Context(), "outbox file not opened", "err", err)
		http.Error(w, "the file cannot be read right now", http.StatusServiceUnavailable)
		return
	}
	defer content.Close()
	h := w.Header()
	ct := f.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	h.Set("Content-Type", ct)
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": f.Name}))
	h.Set("Content-Length", strconv.FormatInt(f.Size, 10))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'")
	if _, err := io.Copy(w, content); err != nil {
		s.deps.Log.WarnContext(r.Context(), "outbox file download cut short", "err", err)
	}
}
