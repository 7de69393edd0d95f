package server

import (
	"context"
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

// withSocketCloser gives websocket requests a slot for their connection and subscriptions a closer.
func withSocketCloser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "" {
			next.ServeHTTP(w, r)
			return
		}
		slot := &socketSlot{}
		ctx := context.WithValue(r.Context(), socketSlotKey{}, slot)
		next.ServeHTTP(w, r.WithContext(graph.WithSocketCloser(ctx, slot.close)))
	})
}
