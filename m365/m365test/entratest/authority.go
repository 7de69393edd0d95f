// Package entratest is a fake Entra ID authority for tests: OpenID discovery, a JWKS with key rotation, a
// token endpoint for client credentials and on-behalf-of, and minted access tokens. It links neither
// msgraph nor MSAL, so packages that only verify tokens can use it without their cost.
package entratest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Fixed identifiers of the fake tenant and its registered application, so tests can configure clients.
const (
	TenantID     = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
	ClientID     = "6f1e2d3c-4b5a-4968-8776-655443322110"
	ClientSecret = "fake-client-secret"
	// GraphAudience is the audience of tokens the authority issues for Microsoft Graph.
	GraphAudience = "https://graph.microsoft.com"
	// AppObjectID is the object id of the application's service principal, found in app-only tokens.
	AppObjectID = "9d8c7b6a-5f4e-4d3c-b2a1-0f9e8d7c6b5a"
)

// Key is an RSA signing key of the authority; it signs tokens only once published or when passed explicitly.
type Key struct {
	Kid     string
	Private *rsa.PrivateKey
}

// TokenRequest is one call the token endpoint received, recorded so tests can tell which flow ran.
type TokenRequest struct {
	GrantType         string
	ClientID          string
	Scope             string
	RequestedTokenUse string
	Assertion         string // the user token presented in the on-behalf-of flow
	ClientAssertion   bool   // true when the app proved itself with a certificate
}

// Authority is a fake Entra ID authority served over TLS, as MSAL requires.
type Authority struct {
	srv *httptest.Server

	mu          sync.Mutex
	published   []*Key // keys in the JWKS; the last one signs
	secrets     map[string]string
	certs       map[string]*x509.Certificate
	requests    []TokenRequest
	jwksFetches int
}

// New starts a fake authority for TenantID with ClientID/ClientSecret registered; it stops when t ends.
func New(t testing.TB) *Authority {
	t.Helper()
	a := &Authority{
		secrets: map[string]string{ClientID: ClientSecret},
		certs:   map[string]*x509.Certificate{},
	}
	a.published = append(a.published, a.NewKey(t))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", a.discovery)
	mux.HandleFunc("GET /{tenant}/discovery/v2.0/keys", a.jwks)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", a.token)
	a.srv = httptest.NewTLSServer(mux)
	t.Cleanup(a.srv.Close)
	return a
}

// URL is the authority host to configure clients with (the part before the tenant).
func (a *Authority) URL() string { return a.srv.URL }

// Issuer is the v2.0 issuer of the fake tenant's tokens.
func (a *Authority) Issuer() string { return a.srv.URL + "/" + TenantID + "/v2.0" }

// Client is an HTTP client that trusts the authority's TLS certificate.
func (a *Authority) Client() *http.Client { return a.srv.Client() }

// Certificate is the authority's TLS certificate, for clients that must trust several fakes at once.
func (a *Authority) Certificate() *x509.Certificate { return a.srv.Certificate() }

// NewKey makes a signing key that is not yet published, to model a rotation or a forged key.
func (a *Authority) NewKey(t testing.TB) *Key {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("entratest: generate RSA key: %v", err)
	}
	sum := sha256.Sum256(priv.N.Bytes())
	return &Key{Kid: hex.EncodeToString(sum[:8]), Private: priv}
}

// Publish adds k to the JWKS and makes it the key that signs from now on.
func (a *Authority) Publish(k *Key) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.published = append(a.published, k)
}

// Retire removes every published key but the current one, as Entra ID does after a rollover.
func (a *Authority) Retire() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.published = a.published[len(a.published)-1:]
}

// Current is the key that signs tokens now.
func (a *Authority) Current() *Key {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.published[len(a.published)-1]
}

// JWKSFetches counts how often the JWKS was downloaded, to check caching and refresh limits.
func (a *Authority) JWKSFetches() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.jwksFetches
}

// TokenRequests returns the token endpoint's calls in order.
func (a *Authority) TokenRequests() []TokenRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]TokenRequest(nil), a.requests...)
}

// UserClaims are valid claims of a v2.0 access token for our API (audience api://ClientID) for email.
func (a *Authority) UserClaims(email string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"aud":                "api://" + ClientID,
		"iss":                a.Issuer(),
		"iat":                now.Unix(),
		"nbf":                now.Unix(),
		"exp":                now.Add(time.Hour).Unix(),
		"tid":                TenantID,
		"oid":                ObjectID(email),
		"sub":                "sub-" + ObjectID(email),
		"preferred_username": email,
		"name":               "User " + email,
		"scp":                "access_as_user",
		"azp":                "7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d",
		"ver":                "2.0",
	}
}

// ObjectID derives a stable fake object id from an email so tests can predict it.
func ObjectID(email string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(email)))
	h := hex.EncodeToString(sum[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// Sign signs claims with the current key (RS256, kid in the header).
func (a *Authority) Sign(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	return SignWith(t, a.Current(), claims)
}

// SignWith signs claims with k, published or not.
func SignWith(t testing.TB, k *Key, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = k.Kid
	s, err := tok.SignedString(k.Private)
	if err != nil {
		t.Fatalf("entratest: sign token: %v", err)
	}
	return s
}

// Parse verifies a token this authority issued (signature by a published key, expiry) and returns its claims.
func (a *Authority) Parse(token string) (jwt.MapClaims, error) {
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(token, claims, func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, k := range a.published {
			if k.Kid == kid {
				return &k.Private.PublicKey, nil
			}
		}
		return nil, jwt.ErrTokenUnverifiable
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(a.Issuer()))
	if err != nil {
		return nil, err
	}
	return claims, nil
}

func (a *Authority) discovery(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	base := a.srv.URL + "/" + tenant
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                base + "/v2.0",
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"jwks_uri":                              base + "/discovery/v2.0/keys",
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"tenant_region_scope":                   "EU",
	})
}

func (a *Authority) jwks(w http.ResponseWriter, _ *http.Request) {
	a.mu.Lock()
	a.jwksFetches++
	keys := make([]map[string]any, 0, len(a.published))
	for _, k := range a.published {
		pub := k.Private.PublicKey
		keys = append(keys, map[string]any{
			"kty": "RSA",
			"use": "sig",
			"kid": k.Kid,
			"n":   base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
			"e":   base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		})
	}
	a.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"keys": keys})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
