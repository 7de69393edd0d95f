package auth

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/engage-email/engage/m365/m365test/entratest"
)

func newVerifier(t testing.TB, a *entratest.Authority, mod func(*EntraConfig)) *EntraVerifier {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cfg := EntraConfig{
		TenantID:     entratest.TenantID,
		Audience:     "api://" + entratest.ClientID,
		AuthorityURL: a.URL(),
		HTTPClient:   a.Client(),
	}
	if mod != nil {
		mod(&cfg)
	}
	v, err := NewEntraVerifier(ctx, cfg)
	if err != nil {
		t.Fatalf("NewEntraVerifier: %v", err)
	}
	return v
}

// with returns the authority's valid claims for email changed by edit.
func with(a *entratest.Authority, email string, edit func(jwt.MapClaims)) jwt.MapClaims {
	c := a.UserClaims(email)
	edit(c)
	return c
}

func TestEntraVerify(t *testing.T) {
	a := entratest.New(t)
	v := newVerifier(t, a, nil)
	pubDER, err := x509.MarshalPKIXPublicKey(&a.Current().Private.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	hs256 := func(secret []byte) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, a.UserClaims("mallory@contoso.com"))
		tok.Header["kid"] = a.Current().Kid
		s, err := tok.SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	none := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodNone, a.UserClaims("mallory@contoso.com"))
		tok.Header["kid"] = a.Current().Kid
		s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	now := time.Now()
	alice := entratest.ObjectID("alice@contoso.com")

	tests := []struct {
		name  string
		token string
		want  Identity // compared without Token when ok
		ok    bool
	}{
		{name: "valid", token: a.Sign(t, a.UserClaims("Alice@Contoso.com")), ok: true,
			want: Identity{Email: "alice@contoso.com", Name: "User Alice@Contoso.com", TenantID: entratest.TenantID, ObjectID: alice}},
		{name: "bearer prefix", token: "Bearer " + a.Sign(t, a.UserClaims("alice@contoso.com")), ok: true,
			want: Identity{Email: "alice@contoso.com", Name: "User alice@contoso.com", TenantID: entratest.TenantID, ObjectID: alice}},
		{name: "bare client id audience", token: a.Sign(t, with(a, "alice@contoso.com", func(c jwt.MapClaims) { c["aud"] = entratest.ClientID })), ok: true,
			want: Identity{Email: "alice@contoso.com", Name: "User alice@contoso.com", TenantID: entratest.TenantID, ObjectID: alice}},
		{name: "upn when no preferred_username", token: a.Sign(t, with(a, "alice@contoso.com", func(c jwt.MapClaims) {
			delete(c, "preferred_username")
			c["upn"] = "ALICE@contoso.com"
		})), ok: true, want: Identity{Email: "alice@contoso.com", Name: "User alice@contoso.com", TenantID: entratest.TenantID, ObjectID: alice}},
		{name: "email when no upn", token: a.Sign(t, with(a, "alice@contoso.com", func(c jwt.MapClaims) {
			delete(c, "preferred_username")
			c["email"] = "alice@contoso.com"
		})), ok: true, want: Identity{Email: "alice@contoso.com", Name: "User alice@contoso.com", TenantID: entratest.TenantID, ObjectID: alice}},
		{name: "admin role", token: a.Sign(t, with(a, "boss@contoso.com", func(c jwt.MapClaims) { c["roles"] = []string{"Other", "Engage.Admin"} })), ok: true,
			want: Identity{Email: "boss@contoso.com", Name: "User boss@contoso.com", Admin: true, TenantID: entratest.TenantID, ObjectID: entratest.ObjectID("boss@contoso.com")}},
		{name: "expired within leeway", token: a.Sign(t, with(a, "alice@contoso.com", func(c jwt.MapClaims) { c["exp"] = now.Add(-20 * time.Second).Unix() })), ok: true,
			want: Identity{Email: "alice@contoso.com", Name: "User alice@contoso.com", TenantID: entratest.TenantID, ObjectID: alice}},
		{name: "expired", token: a.Sign(t, with(a, "alice@contoso.com", func(c jwt.MapClaims) { c["exp"] = now.Add(-10 * time.Minute).Unix() }))},
		{name: "no expiry", token: a.Sign(t, with(a, "alice@contoso.com", func(c jwt.MapClaims) { delete(c, "exp") }))},
		{name: "not yet valid", token: a.Sign(t, with(a, "alice@contoso.com", func(c jwt.MapClaims) { c["nbf"] = now.Add(10 * time.Minute).Unix() }))},
		{name: "wrong audience", token: a.Sign(t, with(a, "alice@contoso.com", func(c jwt.MapClaims) { c["aud"] = "https://graph.microsoft.com" }))},
		{name: "wrong issuer", token: a.Sign(t, with(a, "alice@contoso.com", func(c jwt.MapClaims) { c["iss"] = "https://evil.example/" + entratest.TenantID + "/v2.0" }))},
		{name: "v1 issuer off the default authority", token: a.Sign(t, with(a, "alice@contoso.com", func(c jwt.MapClaims) { c["iss"] = "https://sts.windows.net/" + entratest.TenantID + "/" }))},
		{name: "wrong tid", token: a.Sign(t, with(a, "alice@contoso.com", func(c jwt.MapClaims) { c["tid"] = "11111111-2222-3333-4444-555555555555" }))},
		{name: "no email claim", token: a.Sign(t, with(a, "alice@contoso.com", func(c jwt.MapClaims) { delete(c, "preferred_username") }))},
		{name: "alg none", token: none()},
		{name: "HS256 with public key PEM as secret", token: hs256(pubPEM)},
		{name: "HS256 with public key DER as secret", token: hs256(pubDER)},
		{name: "signed by an unpublished key", token: entratest.SignWith(t, a.NewKey(t), a.UserClaims("alice@contoso.com"))},
		{name: "garbage", token: "not-a-jwt"},
		{name: "three garbage segments", token: "a.b.c"},
		{name: "empty", token: ""},
		{name: "bearer only", token: "Bearer "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := v.Verify(context.Background(), tc.token)
			if !tc.ok {
				if !errors.Is(err, ErrUnauthenticated) {
					t.Fatalf("Verify = %+v, %v; want an error wrapping ErrUnauthenticated", got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			raw := strings.TrimPrefix(tc.token, "Bearer ")
			if got.Token != raw {
				t.Errorf("Token = %q, want the raw token", got.Token)
			}
			got.Token = ""
			if got != tc.want {
				t.Errorf("Verify = %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestEntraKeyRotation(t *testing.T) {
	a := entratest.New(t)
	const every = 300 * time.Millisecond
	v := newVerifier(t, a, func(c *EntraConfig) { c.KeyRefreshEvery = every })
	ctx := context.Background()
	if n := a.JWKSFetches(); n != 1 {
		t.Fatalf("JWKS fetched %d times at start, want 1", n)
	}
	for i := range 3 {
		if _, err := v.Verify(ctx, a.Sign(t, a.UserClaims("alice@contoso.com"))); err != nil {
			t.Fatalf("verify %d with the cached key: %v", i, err)
		}
	}
	if n := a.JWKSFetches(); n != 1 {
		t.Fatalf("JWKS fetched %d times after known-kid tokens, want 1 (cached)", n)
	}

	// A token signed by a key not (yet) in the JWKS: one refresh, still unknown, refused.
	next := a.NewKey(t)
	early := entratest.SignWith(t, next, a.UserClaims("alice@contoso.com"))
	if _, err := v.Verify(ctx, early); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("unknown kid: err = %v, want ErrUnauthenticated", err)
	}
	if n := a.JWKSFetches(); n != 2 {
		t.Fatalf("JWKS fetched %d times after an unknown kid, want 2", n)
	}
	// A storm of unknown kids inside the interval causes no further downloads.
	for range 5 {
		if _, err := v.Verify(ctx, entratest.SignWith(t, next, a.UserClaims("bob@contoso.com"))); !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("unknown kid in storm: err = %v, want ErrUnauthenticated", err)
		}
	}
	if n := a.JWKSFetches(); n != 2 {
		t.Fatalf("JWKS fetched %d times during an unknown-kid storm, want 2 (rate limited)", n)
	}

	// Entra ID rolls over to the new key and retires the old one; after the interval the new kid is fetched.
	a.Publish(next)
	a.Retire()
	time.Sleep(every + 50*time.Millisecond)
	id, err := v.Verify(ctx, early)
	if err != nil {
		t.Fatalf("rotated kid after refresh: %v", err)
	}
	if id.Email != "alice@contoso.com" {
		t.Errorf("Email = %q", id.Email)
	}
	if n := a.JWKSFetches(); n != 3 {
		t.Errorf("JWKS fetched %d times after the rotation, want 3", n)
	}
}

func TestNewEntraVerifierErrors(t *testing.T) {
	a := entratest.New(t)
	tests := []struct {
		name string
		cfg  EntraConfig
	}{
		{name: "no tenant", cfg: EntraConfig{Audience: "api://x", AuthorityURL: a.URL(), HTTPClient: a.Client()}},
		{name: "no audience", cfg: EntraConfig{TenantID: entratest.TenantID, AuthorityURL: a.URL(), HTTPClient: a.Client()}},
		{name: "untrusted TLS", cfg: EntraConfig{TenantID: entratest.TenantID, Audience: "api://x", AuthorityURL: a.URL()}},
		{name: "discovery 404", cfg: EntraConfig{TenantID: entratest.TenantID, Audience: "api://x", AuthorityURL: a.URL() + "/nowhere", HTTPClient: a.Client()}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if v, err := NewEntraVerifier(context.Background(), tc.cfg); err == nil {
				t.Fatalf("NewEntraVerifier = %v, want an error", v)
			}
		})
	}
}

func FuzzEntraVerify(f *testing.F) {
	a := entratest.New(f)
	v := newVerifier(f, a, nil)
	valid := a.Sign(f, a.UserClaims("alice@contoso.com"))
	for _, s := range []string{valid, "", "a.b.c", "Bearer x", valid[:len(valid)-3], strings.Replace(valid, ".", "..", 1)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		id, err := v.Verify(context.Background(), token)
		if err != nil {
			if !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("error %v does not wrap ErrUnauthenticated", err)
			}
			return
		}
		if id.Email != "alice@contoso.com" || id.TenantID != entratest.TenantID {
			t.Fatalf("accepted %q as %+v", token, id)
		}
	})
}

// BenchmarkEntraVerify measures the per-request cost of proving a caller with a cached key.
func BenchmarkEntraVerify(b *testing.B) {
	a := entratest.New(b)
	v := newVerifier(b, a, nil)
	tok := a.Sign(b, a.UserClaims("alice@contoso.com"))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}
