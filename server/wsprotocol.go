package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/gorilla/websocket"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/engage-email/engage/graph"
)

// graphql-transport-ws close codes (the protocol of the graphql-ws library).
const (
	closeBadMessage       = 4400
	closeInitTimeout      = 4408
	closeSubscriberExists = 4409
	closeTooManyInits     = 4429
	wsReadLimit           = 1 << 20
	transportWSProtocol   = "graphql-transport-ws"
)

// transportWS serves graphql-transport-ws itself, in place of gqlgen's websocket transport, because an
// idle subscriber must be cheap: gqlgen keeps three goroutines per connection (its read loop, deep in
// the HTTP handler, a watcher that closes on cancel, and one per operation). Here a connection has a
// read loop with a shallow stack, started after the HTTP handler returned, and one goroutine per
// operation; closing on cancel is a context.AfterFunc and keep-alives are the shared keepAlive's.
// Legacy graphql-ws clients are still served by gqlgen's transport. Operations see no HTTP headers:
// a websocket's credentials come in connection_init, and keeping each upgrade's headers costs ~1 KB.
type transportWS struct {
	upgrader    *gorillaWebsocket
	base        context.Context // cancelled on shutdown
	initTimeout time.Duration
	init        func(ctx context.Context, payload transport.InitPayload) (context.Context, int, error)
}

var _ graphql.Transport = transportWS{}

// Supports takes the upgrades that offer graphql-transport-ws.
func (t transportWS) Supports(r *http.Request) bool {
	return r.Header.Get("Upgrade") != "" && slices.Contains(websocket.Subprotocols(r), transportWSProtocol)
}

// Do upgrades the connection and returns: the connection is served on a goroutine of its own, so
// net/http's per-connection buffers and handler stack are let go at once.
func (t transportWS) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	wc, err := t.upgrader.Accept(w, r, transport.WebsocketAcceptOptions{ResponseHeader: http.Header{},
		Subprotocols: []string{transportWSProtocol}})
	if err != nil {
		return // gorilla answered the HTTP request with the reason
	}
	c := &wsConn{t: t, c: wc.(*gorillaConn), exec: exec}
	c.c.SetReadLimit(wsReadLimit)
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	c.ctx, c.cancel = graph.WithSocketCloser(ctx, c.closeWith), cancel
	c.stopShutdown = context.AfterFunc(t.base, func() { c.closeWith(websocket.CloseNormalClosure, "terminated") })
	c.initTimer = time.AfterFunc(t.initTimeout, func() {
		if !c.acked.Load() {
			c.closeWith(closeInitTimeout, "Connection initialisation timeout")
		}
	})
	go c.readLoop()
}

// wsConn is one graphql-transport-ws connection.
type wsConn struct {
	t      transportWS
	c      *gorillaConn
	exec   graphql.GraphExecutor
	ctx    context.Context // the connection's; after connection_init, also the caller's identity
	cancel context.CancelFunc
	// stopShutdown unhooks the close on server shutdown; initTimer closes a connection never initialised.
	stopShutdown func() bool
	initTimer    *time.Timer // read loop only, like inited; nil once acknowledged
	inited       bool
	acked        atomic.Bool
	mu           sync.Mutex
	ops          []wsOp // running operations; usually one
}

type wsOp struct {
	id     string
	cancel context.CancelFunc
}

type wsMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// readLoop is the connection's only long-lived goroutine besides its operations'. Its frame is kept
// small, and messages are handled in handle, so that an idle connection's stack stays within 4 KiB.
func (c *wsConn) readLoop() {
	defer c.end()
	for {
		_, r, err := c.c.NextReader()
		if err != nil || !c.handle(r) {
			return
		}
	}
}

// end ends the connection's operations and lets go of everything it holds.
func (c *wsConn) end() {
	c.cancel()
	c.stopShutdown()
	if c.initTimer != nil {
		c.initTimer.Stop()
	}
	_ = c.c.Close()
}

// handle acts on one client message; false ends the connection.
func (c *wsConn) handle(r io.Reader) bool {
	raw, err := io.ReadAll(r)
	if err != nil {
		return false
	}
	var m wsMessage
	if err := json.Unmarshal(raw, &m); err != nil || m.Type == "" {
		c.closeWith(closeBadMessage, "Invalid message received")
		return false
	}
	switch m.Type {
	case "connection_init":
		return c.connectionInit(m.Payload)
	case "ping":
		_ = c.c.WriteJSON(wsMessage{Type: "pong", Payload: m.Payload})
	case "pong": // the keep-alive loop saw the frame arrive
	case "subscribe":
		return c.subscribe(m.ID, m.Payload)
	case "complete":
		c.mu.Lock()
		if i := c.op(m.ID); i >= 0 {
			c.ops[i].cancel()
		}
		c.mu.Unlock()
	default:
		c.closeWith(closeBadMessage, fmt.Sprintf("Invalid message type %q", m.Type))
		return false
	}
	return true
}

func (c *wsConn) connectionInit(payload json.RawMessage) bool {
	if c.inited {
		c.closeWith(closeTooManyInits, "Too many initialisation requests")
		return false
	}
	c.inited = true
	var p transport.InitPayload
	if len(payload) > 0 && string(payload) != "null" {
		if err := json.Unmarshal(payload, &p); err != nil {
			c.closeWith(closeBadMessage, "Invalid connection_init payload")
			return false
		}
	}
	ctx, code, err := c.t.init(c.ctx, p)
	if err != nil {
		c.closeWith(code, "unauthenticated")
		return false
	}
	c.initTimer.Stop()
	c.initTimer = nil
	c.ctx = ctx
	if err := c.c.WriteJSON(wsMessage{Type: "connection_ack"}); err != nil {
		return false
	}
	c.acked.Store(true)
	return true
}

func (c *wsConn) subscribe(id string, payload json.RawMessage) bool {
	if !c.acked.Load() {
		c.closeWith(closeUnauthorized, "Unauthorized")
		return false
	}
	if id == "" {
		c.closeWith(closeBadMessage, "Subscribe without an id")
		return false
	}
	ctx, cancel := context.WithCancel(c.ctx)
	c.mu.Lock()
	if c.op(id) >= 0 {
		c.mu.Unlock()
		cancel()
		c.closeWith(closeSubscriberExists, fmt.Sprintf("Subscriber for %s already exists", id))
		return false
	}
	c.ops = append(c.ops, wsOp{id: id, cancel: cancel})
	c.mu.Unlock()
	go c.execute(ctx, id, payload, graphql.Now())
	return true
}

// op is the index of the running operation id, or -1; c.mu is held.
func (c *wsConn) op(id string) int {
	return slices.IndexFunc(c.ops, func(o wsOp) bool { return o.id == id })
}

// execute runs one operation to its end, sending its results; a subscription's goroutine waits here
// for its next event.
func (c *wsConn) execute(ctx context.Context, id string, payload json.RawMessage, start time.Time) {
	defer func() {
		c.mu.Lock()
		if i := c.op(id); i >= 0 {
			c.ops[i].cancel()
			c.ops = slices.Delete(c.ops, i, i+1)
		}
		c.mu.Unlock()
	}()
	ctx = graphql.StartOperationTrace(ctx)
	params := &graphql.RawParams{}
	if err := json.Unmarshal(payload, params); err != nil {
		c.sendError(id, gqlerror.List{{Message: "invalid json"}})
		return
	}
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}
	rc, errs := c.exec.CreateOperationContext(ctx, params)
	if errs != nil {
		resp := c.exec.DispatchError(graphql.WithOperationContext(ctx, rc), errs)
		if errcode.GetErrorKind(errs) == errcode.KindProtocol {
			c.sendError(id, resp.Errors)
		} else {
			c.send(id, "next", &graphql.Response{Errors: errs})
			c.send(id, "complete", nil)
		}
		return
	}
	ctx = graphql.WithOperationContext(ctx, rc)
	defer func() {
		if p := recover(); p != nil {
			err := rc.Recover(ctx, p)
			var gqlErr *gqlerror.Error
			if !errors.As(err, &gqlErr) {
				gqlErr = &gqlerror.Error{Message: fmt.Sprint(err)}
			}
			c.sendError(id, gqlerror.List{gqlErr})
		}
	}()
	responses, ctx := c.exec.DispatchOperation(ctx, rc)
	for {
		resp := responses(ctx)
		if resp == nil {
			break
		}
		c.send(id, "next", resp)
	}
	if ctx.Err() == nil { // ended by itself, not by the client's complete or the connection's end
		c.send(id, "complete", nil)
	}
}

func (c *wsConn) send(id, typ string, resp *graphql.Response) {
	m := wsMessage{ID: id, Type: typ}
	if resp != nil {
		b, err := json.Marshal(resp)
		if err != nil {
			c.sendError(id, gqlerror.List{{Message: "the result could not be encoded"}})
			return
		}
		m.Payload = b
	}
	_ = c.c.WriteJSON(m) // a failed write fails the next read too, which ends the connection
}

func (c *wsConn) sendError(id string, errs gqlerror.List) {
	b, err := json.Marshal(errs)
	if err != nil {
		b = []byte(`[{"message":"the error could not be encoded"}]`)
	}
	_ = c.c.WriteJSON(wsMessage{ID: id, Type: "error", Payload: b})
}

// closeWith closes the connection with a protocol close code; the read loop then ends it.
func (c *wsConn) closeWith(code int, reason string) {
	_ = c.c.WriteClose(code, reason)
	_ = c.c.Close()
}
