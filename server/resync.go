package server

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"sync"

	"github.com/99designs/gqlgen/graphql/handler/transport"

	"github.com/engage-email/engage/graph"
)

// closableWebsocket lets a subscription close its own connection with a code: gqlgen closes only with
// 1000 once a connection runs, but an alerts subscriber that fell behind must hear 4409 "resync".
type closableWebsocket struct {
	transport.WebsocketImplementation
}

type socketSlotKey struct{}

// socketSlot carries the connection from Accept to the subscriptions, which see the request's context.
type socketSlot struct {
	mu   sync.Mutex
	conn transport.WebsocketConn
}

func (w closableWebsocket) Accept(rw http.ResponseWriter, r *http.Request, opts transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	c, err := w.WebsocketImplementation.Accept(rw, r, opts)
	if slot, ok := r.Context().Value(socketSlotKey{}).(*socketSlot); ok && err == nil {
		slot.mu.Lock()
		slot.conn = c
		slot.mu.Unlock()
	}
	return c, err
}

func (s *socketSlot) close(code int, reason string) {
	s.mu.Lock()
	c := s.conn
	s.mu.Unlock()
	if c == nil {
		return
	}
	_ = c.WriteClose(code, reason) // a control frame: safe alongside gqlgen's writes
	_ = c.Close()
}

// release closes the connection once gqlgen is done with it: on some failed connection_init paths
// gqlgen returns without closing, and the keep-alive loop would otherwise hold the socket open.
func (s *socketSlot) release() {
	s.mu.Lock()
	c := s.conn
	s.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
}

// websocketRequests serves each websocket upgrade on a goroutine of its own and lets the HTTP
// connection's goroutine return as soon as the connection is hijacked. Otherwise net/http's
// per-connection reader and writer (8 KiB) and its deep stack would be held as long as a subscriber
// stays connected. The subscription's context no longer ends with the request but with the server's
// base context (shutdown) or the connection. It also gives subscriptions a closer for their socket.
func (s *Server) websocketRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "" {
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), plainRequestKey{}, true)))
			return
		}
		if (transportWS{}).Supports(r) { // transportWS detaches by itself
			next.ServeHTTP(w, r)
			return
		}
		slot := &socketSlot{}
		dw := &detachableWriter{w: w, hijacked: make(chan struct{})}
		ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
		stop := context.AfterFunc(s.base, cancel)
		ctx = graph.WithSocketCloser(context.WithValue(ctx, socketSlotKey{}, slot), slot.close)
		wr := r.WithContext(ctx)
		wr.Body = http.NoBody // the body reader holds the HTTP connection; an upgrade has no body
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer cancel()
			defer stop()
			defer slot.release()
			next.ServeHTTP(dw, wr)
		}()
		select {
		case <-dw.hijacked: // gqlgen runs the connection on; net/http may let go of its buffers
		case <-done: // refused upgrade: the response was written through w, which is still ours
		}
	})
}

// detachableWriter hands a websocket upgrade the response writer until the connection is hijacked,
// and drops it then, so that the long-lived websocket goroutine does not keep the HTTP connection
// (and its buffers) reachable after the handler returned.
type detachableWriter struct {
	mu       sync.Mutex
	w        http.ResponseWriter // nil once hijacked
	header   http.Header
	hijacked chan struct{}
}

func (d *detachableWriter) writer() http.ResponseWriter {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.w
}

func (d *detachableWriter) Header() http.Header {
	if w := d.writer(); w != nil {
		return w.Header()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.header == nil {
		d.header = http.Header{}
	}
	return d.header
}

func (d *detachableWriter) Write(b []byte) (int, error) {
	if w := d.writer(); w != nil {
		return w.Write(b)
	}
	return 0, http.ErrHijacked
}

func (d *detachableWriter) WriteHeader(code int) {
	if w := d.writer(); w != nil {
		w.WriteHeader(code)
	}
}

func (d *detachableWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.w == nil {
		return nil, nil, http.ErrHijacked
	}
	conn, rw, err := http.NewResponseController(d.w).Hijack()
	if err != nil {
		return nil, nil, err
	}
	d.w = nil
	close(d.hijacked)
	return conn, rw, nil
}
