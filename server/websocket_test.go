package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/engage-email/engage/auth"
	"github.com/engage-email/engage/graph"
	"github.com/engage-email/engage/server"
)

type wsMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// dialWS opens a websocket to /graphql with the given subprotocol and origin.
func dialWS(t *testing.T, e *engage, subprotocol, origin string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{subprotocol}, HandshakeTimeout: 5 * time.Second}
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	return d.Dial("ws"+strings.TrimPrefix(e.URL, "http")+"/graphql", h)
}

func readWS(t *testing.T, c *websocket.Conn) wsMessage {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		var m wsMessage
		if err := c.ReadJSON(&m); err != nil {
			t.Fatalf("read: %v", err)
		}
		switch m.Type {
		case "ka", "pong":
			continue
		case "ping":
			c.WriteJSON(wsMessage{Type: "pong"})
			continue
		}
		return m
	}
}

func TestWebsocketSubscriptions(t *testing.T) {
	e := start(t)
	protocols := []struct {
		name, subprotocol, subscribe, next string
	}{
		{"graphql-transport-ws", "graphql-transport-ws", "subscribe", "next"},
		{"legacy graphql-ws", "graphql-ws", "start", "data"},
	}
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			c, _, err := dialWS(t, e, p.subprotocol, "")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if c.Subprotocol() != p.subprotocol {
				t.Fatalf("negotiated %q", c.Subprotocol())
			}
			c.WriteJSON(wsMessage{Type: "connection_init", Payload: json.RawMessage(`{"X-Engage-User":"rep@contoso.com"}`)})
			if m := readWS(t, c); m.Type != "connection_ack" {
				t.Fatalf("got %+v, want connection_ack", m)
			}
			c.WriteJSON(wsMessage{ID: "1", Type: p.subscribe, Payload: json.RawMessage(`{"query":"subscription { ticks(count: 2) }"}`)})
			for want := 1; want <= 2; want++ {
				m := readWS(t, c)
				if m.Type != p.next || m.ID != "1" || !strings.Contains(string(m.Payload), `"ticks":`+string(rune('0'+want))) {
					t.Fatalf("got %+v %s, want tick %d", m, m.Payload, want)
				}
			}
			if m := readWS(t, c); m.Type != "complete" {
				t.Fatalf("got %+v, want complete", m)
			}
		})
	}

	t.Run("no credentials closes with 4401", func(t *testing.T) {
		c, _, err := dialWS(t, e, "graphql-transport-ws", "")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.WriteJSON(wsMessage{Type: "connection_init", Payload: json.RawMessage(`{}`)})
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			_, _, err := c.ReadMessage()
			if err == nil {
				continue // the connection_error frame before the close
			}
			if !websocket.IsCloseError(err, 4401) {
				t.Fatalf("err = %v, want close 4401", err)
			}
			return
		}
	})

	t.Run("origin allow-list", func(t *testing.T) {
		tests := []struct {
			origin string
			ok     bool
		}{
			{"https://outlook.office.com", true},
			{e.URL, true},
			{"https://evil.example", false},
		}
		for _, tt := range tests {
			c, res, err := dialWS(t, e, "graphql-transport-ws", tt.origin)
			if tt.ok != (err == nil) {
				t.Fatalf("origin %s: err %v, want ok=%v", tt.origin, err, tt.ok)
			}
			if err == nil {
				c.Close()
			} else if res == nil || res.StatusCode != http.StatusForbidden {
				t.Fatalf("origin %s refused with %v, want 403", tt.origin, res)
			}
		}
	})
}

// startKeepAlive is a bare Engage (the ticks subscription needs no store) whose websockets are
// pinged every interval, so keep-alive behaviour shows within a test.
func startKeepAlive(t *testing.T, interval time.Duration) *engage {
	t.Helper()
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	srv, err := server.New(server.Options{KeepAlive: interval},
		server.Deps{Log: log, Auth: auth.NewLocal(nil), Ready: func(context.Context) error { return nil }, Resolver: &graph.Resolver{}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &engage{URL: ts.URL}
}

// TestWebsocketKeepAlive: one shared loop pings every connection; a peer that answers stays, one that
// does not is dropped, in both protocols.
func TestWebsocketKeepAlive(t *testing.T) {
	e := startKeepAlive(t, 50*time.Millisecond)
	tests := []struct {
		name, subprotocol, subscribe string
		answers                      bool
	}{
		{"graphql-transport-ws peer answering pings stays", "graphql-transport-ws", "subscribe", true},
		{"graphql-transport-ws peer not answering is dropped", "graphql-transport-ws", "subscribe", false},
		{"graphql-ws peer answering control pings stays", "graphql-ws", "start", true},
		{"graphql-ws peer not answering is dropped", "graphql-ws", "start", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := dialWS(t, e, tt.subprotocol, "")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var controlPings atomic.Int64
			c.SetPingHandler(func(data string) error {
				controlPings.Add(1)
				if !tt.answers {
					return nil
				}
				return c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
			})
			c.WriteJSON(wsMessage{Type: "connection_init", Payload: json.RawMessage(`{"X-Engage-User":"rep@contoso.com"}`)})
			c.WriteJSON(wsMessage{ID: "1", Type: tt.subscribe, Payload: json.RawMessage(`{"query":"subscription { ticks(count: 60) }"}`)})
			keepAlives := 0                                     // graphql-transport-ws pings; graphql-ws peers count their control pings
			c.SetReadDeadline(time.Now().Add(10 * time.Second)) // a bound on a failing test, not a measurement
			for {
				var m wsMessage
				err := c.ReadJSON(&m)
				keepAlives += int(controlPings.Swap(0))
				if err != nil {
					var ne net.Error
					switch {
					case tt.answers:
						t.Fatalf("dropped after %d keep-alives although it answered: %v", keepAlives, err)
					case errors.As(err, &ne) && ne.Timeout():
						t.Fatalf("a silent peer was not dropped (%d keep-alives): %v", keepAlives, err)
					case keepAlives == 0:
						t.Fatalf("dropped before any keep-alive: %v", err)
					}
					return
				}
				switch m.Type {
				case "ping":
					keepAlives++
					if tt.answers {
						c.WriteJSON(wsMessage{Type: "pong"})
					}
				case "ka", "connection_ack", "next", "data":
				default:
					t.Fatalf("unexpected frame %+v", m)
				}
				if tt.answers && keepAlives >= 8 {
					return // it answered 8 pings and is still connected
				}
			}
		})
	}

	t.Run("nothing is left running once the peers are gone", func(t *testing.T) {
		for _, proto := range []string{"graphql-transport-ws", "graphql-ws"} {
			c, _, err := dialWS(t, e, proto, "")
			if err != nil {
				t.Fatal(err)
			}
			c.WriteJSON(wsMessage{Type: "connection_init", Payload: json.RawMessage(`{"X-Engage-User":"rep@contoso.com"}`)})
			if m := readWS(t, c); m.Type != "connection_ack" {
				t.Fatalf("got %+v", m)
			}
			c.Close()
		}
		for _, fn := range []string{"server.(*keepAlive).run", "server.(*wsConn).readLoop", "transport.(*wsConnection).run"} {
			waitNoGoroutine(t, fn)
		}
	})
}

// waitNoGoroutine fails unless no goroutine is in fn within a few seconds.
func waitNoGoroutine(t *testing.T, fn string) {
	t.Helper()
	var stacks strings.Builder
	for range 100 {
		stacks.Reset()
		pprof.Lookup("goroutine").WriteTo(&stacks, 1)
		if !strings.Contains(stacks.String(), fn) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("a goroutine is still in %s:\n%s", fn, stacks.String())
}
