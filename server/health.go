package server

import (
	"context"
	"net/http"
	"time"
)

// healthz says the process is up; it touches nothing else, so a slow store never restarts Engage.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

// readyz says the store answers, so a load balancer sends traffic only to instances that can use it.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.deps.Ready(ctx); err != nil {
		s.deps.Log.WarnContext(ctx, "not ready", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("store unreachable\n"))
		return
	}
	w.Write([]byte("ok\n"))
}
