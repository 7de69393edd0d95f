package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
)

// Buffer sizes of an accepted websocket. The read buffer is held for the connection's whole life, so
// it is small: frames larger than it are read straight through. Write buffers come from a shared pool
// and are held only while a frame is being written.
const (
	wsReadBufferSize  = 512
	wsWriteBufferSize = 4096
	wsWriteTimeout    = 10 * time.Second
)

// gorillaWebsocket adapts gorilla/websocket to gqlgen's websocket transport. An idle subscriber is kept
// cheap: a small read buffer, no write buffer between frames, and no keep-alive goroutine of its own.
type gorillaWebsocket struct {
	upgrader  websocket.Upgrader
	keepAlive *keepAlive
}

func newGorillaWebsocket(allowedOrigins []string, ka *keepAlive) *gorillaWebsocket {
	allowed := map[string]bool{}
	for _, o := range allowedOrigins {
		allowed[strings.ToLower(strings.TrimRight(o, "/"))] = true
	}
	return &gorillaWebsocket{keepAlive: ka, upgrader: websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   wsReadBufferSize,
		WriteBufferSize:  wsWriteBufferSize,
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
	c := &gorillaConn{conn: conn, keepAlive: g.keepAlive}
	c.heardAt.Store(time.Now().UnixNano())
	conn.SetPongHandler(func(string) error { // answers to the control pings sent to graphql-ws peers
		c.heardAt.Store(time.Now().UnixNano())
		return nil
	})
	if g.keepAlive != nil {
		g.keepAlive.add(c)
	}
	return c, nil
}

// gorillaConn is one accepted websocket. Writes are serialised here, not only by gqlgen, because the
// shared keep-alive loop writes pings too.
type gorillaConn struct {
	conn      *websocket.Conn
	keepAlive *keepAlive
	writeMu   sync.Mutex
	heardAt   atomic.Int64 // unix nanoseconds of the last frame read from the peer
	pingedAt  atomic.Int64 // unix nanoseconds of the unanswered ping; 0 when none is pending
	acked     atomic.Bool  // gqlgen wrote its first frame, connection_ack: keep-alives may start
	closeOnce sync.Once
	closeErr  error
}

// Close is idempotent: gqlgen, an overflowing subscription, the keep-alive loop and the request's
// end may all close the same connection.
func (c *gorillaConn) Close() error {
	c.closeOnce.Do(func() {
		if c.keepAlive != nil {
			c.keepAlive.remove(c)
		}
		c.closeErr = c.conn.Close()
	})
	return c.closeErr
}

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
	c.heardAt.Store(time.Now().UnixNano())
	return t, r, nil
}

func (c *gorillaConn) WriteJSON(v any) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(wsWriteTimeout))
	err := c.conn.WriteJSON(v)
	c.acked.Store(true)
	return err
}

func (c *gorillaConn) WriteClose(code int, message string) error {
	return c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, message), time.Now().Add(time.Second))
}

func (c *gorillaConn) Subprotocol() string { return c.conn.Subprotocol() }

func (c *gorillaConn) SetReadLimit(limit int64) { c.conn.SetReadLimit(limit) }

func (c *gorillaConn) SetReadDeadline(t time.Time) error { return c.conn.SetReadDeadline(t) }

var (
	pingFrame = []byte(`{"type":"ping"}`) // graphql-transport-ws: the peer must answer with a pong
	kaFrame   = []byte(`{"type":"ka"}`)   // graphql-ws (legacy): one-way, so a control ping goes with it
)

// ping sends the subprotocol's keep-alive; it reports false when it sent none because the connection
// was busy writing: that connection is not idle, and the keep-alive loop must not wait behind it.
func (c *gorillaConn) ping(timeout time.Duration) (bool, error) {
	if !c.writeMu.TryLock() {
		return false, nil
	}
	defer c.writeMu.Unlock()
	deadline := time.Now().Add(timeout)
	_ = c.conn.SetWriteDeadline(deadline)
	if c.conn.Subprotocol() == "graphql-transport-ws" {
		return true, c.conn.WriteMessage(websocket.TextMessage, pingFrame)
	}
	if err := c.conn.WriteMessage(websocket.TextMessage, kaFrame); err != nil {
		return true, err
	}
	return true, c.conn.WriteControl(websocket.PingMessage, nil, deadline)
}

// Shape of a keep-alive sweep: connections are pinged by up to keepAliveWorkers goroutines, one more
// per keepAliveBatch connections, so that a few peers slow to take a ping do not hold up the rest.
const (
	keepAliveWorkers = 8
	keepAliveBatch   = 1024
)

// keepAlive pings every open websocket from one loop on one ticker, so that an idle subscriber costs
// neither a goroutine nor a timer of its own (gqlgen's keep-alive costs both). A peer that sends
// nothing for 1.5 intervals after a ping is dropped at the next tick. The loop runs only while
// connections are open (the last one to close stops it), and stops with ctx.
type keepAlive struct {
	ctx      context.Context
	interval time.Duration
	mu       sync.Mutex
	conns    map[*gorillaConn]struct{}
	running  bool
	emptied  chan struct{}    // signalled when the last connection is removed
	open     prometheus.Gauge // counts the connections in conns, for /metrics; nil when not measured
}

func newKeepAlive(ctx context.Context, interval time.Duration) *keepAlive {
	return &keepAlive{ctx: ctx, interval: interval, conns: map[*gorillaConn]struct{}{}, emptied: make(chan struct{}, 1)}
}

func (k *keepAlive) add(c *gorillaConn) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.conns[c]; !ok && k.open != nil {
		k.open.Inc()
	}
	k.conns[c] = struct{}{}
	if !k.running && k.ctx.Err() == nil {
		k.running = true
		go k.run()
	}
}

func (k *keepAlive) remove(c *gorillaConn) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.conns[c]; ok && k.open != nil {
		k.open.Dec()
	}
	delete(k.conns, c)
	if len(k.conns) == 0 && k.running {
		select {
		case k.emptied <- struct{}{}:
		default:
		}
	}
}

func (k *keepAlive) run() {
	t := time.NewTicker(k.interval)
	defer t.Stop()
	var conns []*gorillaConn
	for {
		var now time.Time
		select {
		case <-k.ctx.Done():
			k.mu.Lock()
			k.running = false
			k.mu.Unlock()
			return
		case <-k.emptied:
		case now = <-t.C:
		}
		k.mu.Lock()
		if len(k.conns) == 0 {
			k.running = false
			k.mu.Unlock()
			return
		}
		conns = conns[:0]
		for c := range k.conns {
			conns = append(conns, c)
		}
		k.mu.Unlock()
		if now.IsZero() { // emptied, then refilled before the loop looked
			continue
		}
		k.sweep(conns, now)
		clear(conns) // hold no closed connection until the next tick
	}
}

func (k *keepAlive) sweep(conns []*gorillaConn, now time.Time) {
	var next atomic.Int64
	work := func() {
		for {
			i := int(next.Add(1)) - 1
			if i >= len(conns) {
				return
			}
			k.check(conns[i], now)
		}
	}
	var wg sync.WaitGroup
	for range min(keepAliveWorkers, (len(conns)+keepAliveBatch-1)/keepAliveBatch) - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
}

// check drops c if its peer left the last ping unanswered, and pings it otherwise. A connection not
// yet acknowledged is left alone: clients expect connection_ack first, and gqlgen's InitTimeout
// closes a connection that never initialises.
func (k *keepAlive) check(c *gorillaConn, now time.Time) {
	if !c.acked.Load() {
		return
	}
	if pinged := c.pingedAt.Load(); pinged != 0 && c.heardAt.Load() < pinged {
		if now.UnixNano()-pinged >= int64(k.interval)*3/2 {
			_ = c.Close() // gqlgen's read then fails, and it ends the connection's subscriptions
		}
		return
	}
	sent, err := c.ping(min(k.interval, wsWriteTimeout))
	if err != nil {
		_ = c.Close() // a failed write leaves a gorilla connection unusable
		return
	}
	if sent {
		c.pingedAt.Store(now.UnixNano())
	}
}
