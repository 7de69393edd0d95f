package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/99designs/gqlgen/graphql/playground"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/engage-email/engage/auth"
	"github.com/engage-email/engage/graph"
	"github.com/engage-email/engage/graph/generated"
)

// Websocket close codes for a failed connection_init, as graphql-ws clients expect.
const (
	closeUnauthorized = 4401
	closeForbidden    = 4403
)

func (s *Server) graphql() http.Handler {
	srv := handler.New(generated.NewExecutableSchema(generated.Config{Resolvers: s.deps.Resolver}))
	// Keep-alives are not gqlgen's (a goroutine and a ticker per connection) but one loop's for all
	// connections: graphql-transport-ws pings, graphql-ws "ka" plus a control ping; a silent peer is dropped.
	// graphql-transport-ws is served by Engage's own lean transport (see transportWS); legacy graphql-ws
	// by gqlgen's, which must come after it.
	ka := newKeepAlive(s.base, s.opts.KeepAlive)
	ka.open = s.metrics.websocketGauge()
	upgrader := newGorillaWebsocket(s.opts.AllowedOrigins, ka)
	srv.AddTransport(transportWS{upgrader: upgrader, base: s.base, initTimeout: s.opts.KeepAlive, init: s.authenticateInit})
	srv.AddTransport(transport.Websocket{
		Implementation: closableWebsocket{upgrader},
		InitTimeout:    s.opts.KeepAlive,
		InitFunc:       s.websocketInit,
	})
	srv.AddTransport(transport.Options{})
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})
	srv.AddTransport(transport.MultipartForm{MaxUploadSize: s.opts.UploadLimit, MaxMemory: 1 << 20})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	if s.opts.Introspection {
		srv.Use(extension.Introspection{})
	}
	srv.Use(extension.AutomaticPersistedQuery{Cache: lru.New[string](100)})
	srv.Use(extension.FixedComplexityLimit(s.opts.ComplexityLimit))
	srv.AroundOperations(graph.Memo)
	srv.AroundOperations(subscriptionsOnSockets)
	srv.SetErrorPresenter(graph.ErrorPresenter(s.deps.Log))
	srv.SetRecoverFunc(graph.Recover(s.deps.Log))
	return s.websocketRequests(srv)
}

// authenticateInit proves who opened a websocket from its connection_init payload; on failure it
// gives the close code graphql-ws clients expect.
func (s *Server) authenticateInit(ctx context.Context, payload transport.InitPayload) (context.Context, int, error) {
	id, err := s.deps.Auth.AuthenticateInit(ctx, payload)
	if err != nil {
		if errors.Is(err, auth.ErrForbidden) {
			return ctx, closeForbidden, err
		}
		return ctx, closeUnauthorized, err
	}
	return auth.WithIdentity(ctx, id), 0, nil
}

func (s *Server) websocketInit(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
	ctx, code, err := s.authenticateInit(ctx, payload)
	if err != nil {
		ctx = transport.WithWebsocketCloseCode(ctx, code)
		return transport.AppendCloseReason(ctx, "unauthenticated"), nil, err
	}
	return ctx, nil, nil
}

func (s *Server) playground(w http.ResponseWriter, r *http.Request) {
	playground.Handler("Engage GraphQL", "/graphql").ServeHTTP(w, r)
}

var _ graphql.ErrorPresenterFunc = graph.ErrorPresenter(nil)

// plainRequestKey marks the context of a GraphQL request that is not a websocket's.
type plainRequestKey struct{}

// subscriptionsOnSockets refuses a subscription sent as a plain GET or POST: gqlgen's transports for
// those would hold the request open until the first event, answer it alone and end, which serves no
// client and ties up a connection meanwhile.
func subscriptionsOnSockets(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	if oc := graphql.GetOperationContext(ctx); oc.Operation != nil && oc.Operation.Operation == ast.Subscription &&
		ctx.Value(plainRequestKey{}) != nil {
		return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{{
			Message:    "subscriptions are served over a websocket (graphql-transport-ws or graphql-ws) at this same URL",
			Extensions: map[string]any{"code": graph.CodeBadUserInput},
		}}})
	}
	return next(ctx)
}
