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
	srv.AddTransport(transport.Websocket{
		Implementation:        closableWebsocket{newGorillaWebsocket(s.opts.AllowedOrigins)},
		KeepAlivePingInterval: s.opts.KeepAlive, // graphql-ws (legacy) "ka" messages
		PingPongInterval:      s.opts.KeepAlive, // graphql-transport-ws ping/pong; a silent peer is dropped
		InitTimeout:           s.opts.KeepAlive,
		InitFunc:              s.websocketInit,
	})
	srv.AddTransport(transport.Options{})
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	if s.opts.Introspection {
		srv.Use(extension.Introspection{})
	}
	srv.Use(extension.AutomaticPersistedQuery{Cache: lru.New[string](100)})
	srv.Use(extension.FixedComplexityLimit(s.opts.ComplexityLimit))
	srv.SetErrorPresenter(graph.ErrorPresenter(s.deps.Log))
	srv.SetRecoverFunc(graph.Recover(s.deps.Log))
	return withSocketCloser(srv)
}

func (s *Server) websocketInit(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
	id, err := s.deps.Auth.AuthenticateInit(ctx, payload)
	if err != nil {
		code := closeUnauthorized
		if errors.Is(err, auth.ErrForbidden) {
			code = closeForbidden
		}
		ctx = transport.WithWebsocketCloseCode(ctx, code)
		return transport.AppendCloseReason(ctx, "unauthenticated"), nil, err
	}
	return auth.WithIdentity(ctx, id), nil, nil
}

func (s *Server) playground(w http.ResponseWriter, r *http.Request) {
	playground.Handler("Engage GraphQL", "/graphql").ServeHTTP(w, r)
}

var _ graphql.ErrorPresenterFunc = graph.ErrorPresenter(nil)
