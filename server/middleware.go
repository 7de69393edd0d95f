package server

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/engage-email/engage/auth"
)

// middleware gives every request an id, a body limit, a log line and a last-resort recovery.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 64 {
			id = newRequestID()
		}
		ctx := withRequestID(r.Context(), id)
		r = r.WithContext(ctx)
		w.Header().Set("X-Request-Id", id)
		limit := s.bodyLimit(r)
		// A body refused before routing: chunked ones are read up to the limit first (uploads, refused
		// without a length by uploadGuard, excepted).
		refused := 0
		if r.ContentLength < 0 && !isUpload(r) {
			if err := bufferBody(r, limit); err != nil && !errors.Is(err, errBodyTooLarge) {
				refused = http.StatusBadRequest
				http.Error(w, "request body not read: "+err.Error(), refused)
			} else if err != nil {
				refused = http.StatusRequestEntityTooLarge
			}
		}
		if refused == 0 && r.ContentLength > limit {
			refused = http.StatusRequestEntityTooLarge
		}
		if refused != 0 {
			if refused == http.StatusRequestEntityTooLarge {
				tooLarge(w, r, limit)
			}
			s.deps.Log.InfoContext(ctx, "request", "method", r.Method, "path", r.URL.Path, "status", refused)
			s.metrics.observe(r, refused, start)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.deps.Log.ErrorContext(ctx, "panic serving request", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if !rec.wrote {
					http.Error(rec, "internal error", http.StatusInternalServerError)
				}
			}
			if !isTrackingPath(r.URL.Path) || rec.status >= 500 {
				s.deps.Log.InfoContext(ctx, "request", "method", r.Method, "path", r.URL.Path, "status", rec.status,
					"duration_ms", float64(time.Since(start).Microseconds())/1000)
			}
			s.metrics.observe(r, rec.status, start) // r.Pattern is the route the mux chose
		}()
		next.ServeHTTP(rec, r)
	})
}

// errBodyTooLarge marks a body of unknown length that ran over the limit.
var errBodyTooLarge = errors.New("request body over the limit")

// bufferBody reads a body of unknown length (chunked) into memory, up to limit bytes, and gives the
// request its length, so that one over the limit is refused with 413 like a body that declared its
// length, rather than by whatever error the handler makes of a body cut short. Handlers read such
// bodies whole anyway (GraphQL's JSON, notifications, forms), so memory stays within the limit.
func bufferBody(r *http.Request, limit int64) error {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	r.Body.Close()
	if err != nil {
		return err
	}
	if int64(len(body)) > limit {
		return errBodyTooLarge
	}
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	return nil
}

// authenticate puts the caller's identity, when proven, into the request context; resolvers decide
// whether an anonymous caller may do what it asks.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "" { // websockets authenticate in connection_init
			id, err := s.deps.Auth.Authenticate(r.Context(), r)
			if err == nil {
				r = r.WithContext(auth.WithIdentity(r.Context(), id))
			} else if !errors.Is(err, auth.ErrUnauthenticated) {
				s.deps.Log.WarnContext(r.Context(), "authentication failed", "err", err)
			}
		}
		next.ServeHTTP(w, r)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack lets websocket upgrades through the recorder.
func (r *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := r.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("server: response writer cannot hijack")
	}
	r.status, r.wrote = http.StatusSwitchingProtocols, true
	return h.Hijack()
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
