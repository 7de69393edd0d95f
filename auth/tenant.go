package auth

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

// Tenant proves callers with Entra ID access tokens, for Engage connected to a Microsoft 365 tenant: the
// add-in and the web app send the token they got for Engage's API.
type Tenant struct {
	verifier *EntraVerifier
}

// NewTenant returns the tenant-mode authenticator over v.
func NewTenant(v *EntraVerifier) *Tenant { return &Tenant{verifier: v} }

// Authenticate reads the caller from the HTTP Authorization header ("Bearer <token>").
func (t *Tenant) Authenticate(ctx context.Context, r *http.Request) (Identity, error) {
	return t.bearer(ctx, r.Header.Get("Authorization"))
}

// AuthenticateInit reads the caller from a websocket connection_init payload, {"Authorization": "Bearer
// <token>"}, since browsers cannot set headers on a websocket.
func (t *Tenant) AuthenticateInit(ctx context.Context, payload map[string]any) (Identity, error) {
	for k, v := range payload {
		if strings.EqualFold(k, "Authorization") {
			s, _ := v.(string)
			return t.bearer(ctx, s)
		}
	}
	return Identity{}, fmt.Errorf("%w: connection_init has no Authorization", ErrUnauthenticated)
}

func (t *Tenant) bearer(ctx context.Context, header string) (Identity, error) {
	v := strings.TrimSpace(header)
	if v == "" {
		return Identity{}, fmt.Errorf("%w: no Authorization header", ErrUnauthenticated)
	}
	if len(v) < 7 || !strings.EqualFold(v[:7], "bearer ") {
		return Identity{}, fmt.Errorf("%w: Authorization is not a bearer token", ErrUnauthenticated)
	}
	return t.verifier.Verify(ctx, v)
}
