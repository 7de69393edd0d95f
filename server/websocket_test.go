package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
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
