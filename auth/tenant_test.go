package auth

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/engage-email/engage/m365/m365test/entratest"
)

func TestTenantAuthenticate(t *testing.T) {
	a := entratest.New(t)
	tenant := NewTenant(newVerifier(t, a, nil))
	alice := a.Sign(t, a.UserClaims("alice@contoso.com"))
	admin := a.Sign(t, with(a, "boss@contoso.com", func(c jwt.MapClaims) { c["roles"] = []string{"Engage.Admin"} }))
	expired := a.Sign(t, with(a, "alice@contoso.com", func(c jwt.MapClaims) { c["exp"] = int64(1) }))
	tests := []struct {
		name      string
		header    string // HTTP Authorization
		payload   map[string]any
		wantEmail string
		wantAdmin bool
	}{
		{name: "bearer header", header: "Bearer " + alice, wantEmail: "alice@contoso.com"},
		{name: "lower-case scheme", header: "bearer " + alice, wantEmail: "alice@contoso.com"},
		{name: "admin role", header: "Bearer " + admin, wantEmail: "boss@contoso.com", wantAdmin: true},
		{name: "init payload", payload: map[string]any{"Authorization": "Bearer " + alice}, wantEmail: "alice@contoso.com"},
		{name: "init payload lower-case key", payload: map[string]any{"authorization": "Bearer " + alice}, wantEmail: "alice@contoso.com"},
		{name: "no header", header: ""},
		{name: "token without scheme", header: alice},
		{name: "basic scheme", header: "Basic YWxpY2U6cHc="},
		{name: "expired token", header: "Bearer " + expired},
		{name: "local-mode header is not enough", payload: map[string]any{LocalHeader: "alice@contoso.com"}},
		{name: "init payload not a string", payload: map[string]any{"Authorization": 42}},
		{name: "empty init payload", payload: map[string]any{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var id Identity
			var err error
			if tc.payload != nil {
				id, err = tenant.AuthenticateInit(context.Background(), tc.payload)
			} else {
				r, _ := http.NewRequest("POST", "/graphql", nil)
				if tc.header != "" {
					r.Header.Set("Authorization", tc.header)
				}
				r.Header.Set(LocalHeader, "mallory@contoso.com")
				id, err = tenant.Authenticate(context.Background(), r)
			}
			if tc.wantEmail == "" {
				if !errors.Is(err, ErrUnauthenticated) {
					t.Fatalf("got %+v, %v; want ErrUnauthenticated", id, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if id.Email != tc.wantEmail || id.Admin != tc.wantAdmin || id.Token == "" || id.TenantID != entratest.TenantID {
				t.Fatalf("identity %+v", id)
			}
		})
	}
}
