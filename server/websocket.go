package server

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/gorilla/websocket"
)

// gorillaWebsocket adapts gorilla/websocket to gqlgen's websocket transport. Small buffers and a shared
// write-buffer pool keep an idle subscriber cheap: most of its life it holds no write buffer at all.
type gorillaWebsocket struct {
	upgrader websocket.Upgrader
}

func newGorillaWebsocket(allowedOrigins []string) *gorillaWebsocket {
	allowed := map[string]bool{}
	for _, o := range allowedOrigins {
		allowed[strings.ToLower(strings.TrimRight(o, "/"))] = true
	}
	return &gorillaWebsocket{upgrader: websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   1024,
		WriteBufferSize:  1024,
		WriteBufferPool:  &sync.Pool{},
		CheckOrigin: func(r *http.Request) bool {
			return originAllowed(r, allowed)
		},
	}}
}

// originAllowed lets through clients that send no Origin (not browsers), pages served by Engage
// itself, and the configured allow-list; a browser page elsewhere cannot ride a user's session.
func originAllowed(r *http.Request, allowed map[string]bool) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	return allowed[strings.ToLower(u.Scheme+"://"+u.Host)] || allowed["*"]
}

func (g *gorillaWebsocket) Accept(w http.ResponseWriter, r *http.Request, opts transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	up := g.upgrader
	up.Subprotocols = slices.Clone(opts.Subprotocols)
	conn, err := up.Upgrade(w, r, opts.ResponseHeader)
	if err != nil {
		return nil, err
	}
	return &gorillaConn{conn: conn}, nil
}

type gorillaConn struct {
	conn *websocket.Conn
}

func (c *gorillaConn) Close() error { return c.conn.Close() }

func (c *gorillaConn) NextReader() (int, io.Reader, error) {
	t, r, err := c.conn.NextReader()
	if err != nil {
		var ce *websocket.CloseError
		if errors.As(err, &ce) && (ce.Code == websocket.CloseNormalClosure || ce.Code == websocket.CloseNoStatusReceived ||
			ce.Code == websocket.CloseGoingAway) {
			return t, nil, transport.ErrWebsocketClosed
		}
		return t, nil, err
	}
	return t, r, nil
}

func (c *gorillaConn) WriteJSON(v any) error {
	_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.conn.WriteJSON(v)
}

func (c *gorillaConn) WriteClose(code int, message string) error {
	return c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, message), time.Now().Add(time.Second))
}

func (c *gorillaConn) Subprotocol() string { return c.conn.Subprotocol() }

func (c *gorillaConn) SetReadLimit(limit int64) { c.conn.SetReadLimit(limit) }

func (c *gorillaConn) SetReadDeadline(t time.Time) error { return c.conn.SetReadDeadline(t) }
