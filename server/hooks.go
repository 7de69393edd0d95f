package server

import (
	"errors"
	"io"
	"net/http"

	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/inbound"
)

// maxNotificationBody bounds one notification post; Graph's batches are far smaller.
const maxNotificationBody = 1 << 20

// hookRoutes serves Microsoft Graph's change and lifecycle notifications when inbound mail is processed.
// Graph signs in as nobody: each notification is checked against its subscription's client state.
func (s *Server) hookRoutes(mux *http.ServeMux) {
	if s.deps.Inbound == nil {
		return
	}
	mux.HandleFunc("POST /hooks/graph", s.graphHook)
	mux.HandleFunc("POST /hooks/graph/lifecycle", s.graphHook)
}

// graphHook answers the validation handshake by echoing the token, and otherwise queues the checked
// notifications durably before answering 202, so a crash after the answer loses nothing. A store
// failure answers 503, and Graph tries again.
func (s *Server) graphHook(w http.ResponseWriter, r *http.Request) {
	if token := r.URL.Query().Get("validationToken"); token != "" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = io.WriteString(w, token)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxNotificationBody))
	if err != nil {
		http.Error(w, "notification too large or unreadable", http.StatusRequestEntityTooLarge)
		return
	}
	ns, err := inbound.ParseNotifications(body)
	if errors.Is(err, followed.ErrBadInput) {
		s.deps.Log.WarnContext(r.Context(), "graph notification dropped", "path", r.URL.Path, "err", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rejected, err := s.deps.Inbound.Accept(r.Context(), ns)
	if err != nil {
		s.deps.Log.ErrorContext(r.Context(), "graph notifications not queued; graph will retry", "err", err)
		http.Error(w, "notifications cannot be stored right now", http.StatusServiceUnavailable)
		return
	}
	for _, rj := range rejected {
		s.deps.Log.WarnContext(r.Context(), "graph notification dropped", "subscription", rj.SubscriptionID, "reason", rj.Reason)
	}
	w.WriteHeader(http.StatusAccepted)
}
