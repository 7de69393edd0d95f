package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// DefaultAuthorityURL is Entra ID's global authority, whose tokens may also carry the v1 issuer.
const DefaultAuthorityURL = "https://login.microsoftonline.com"

// EntraConfig says which tenant and API audience Engage accepts access tokens for.
type EntraConfig struct {
	TenantID string
	// Audience is the API's application id URI (api://<client-id>); the bare client id is accepted too.
	Audience string
	// AuthorityURL defaults to DefaultAuthorityURL; the issuer is {AuthorityURL}/{tenant}/v2.0.
	AuthorityURL string
	HTTPClient   *http.Client
	// Leeway is the clock skew allowed on exp and nbf; it defaults to one minute.
	Leeway time.Duration
	// AdminRole is the app role that makes a caller an admin; it defaults to "Engage.Admin".
	AdminRole string
	// IntegrationRole is the app role that makes a caller an integration; it defaults to "Engage.Integration".
	IntegrationRole string
	// KeyRefreshEvery is the least time between JWKS downloads caused by unknown key ids; default 5 minutes.
	KeyRefreshEvery time.Duration
}

// EntraVerifier proves callers from Entra ID access tokens with cached, rotating signing keys.
type EntraVerifier struct {
	cfg      EntraConfig
	issuers  []string
	audience []string
	keys     keyfunc.Keyfunc
	parser   *jwt.Parser
}

// openIDConfiguration is the part of the discovery document the verifier needs.
type openIDConfiguration struct {
	Issuer  string `json:"issuer"`
	JWKSURI string `json:"jwks_uri"`
}

// NewEntraVerifier discovers the tenant's signing keys; ctx bounds discovery and the verifier's lifetime
// (the JWKS is refreshed hourly in the background until ctx ends).
func NewEntraVerifier(ctx context.Context, cfg EntraConfig) (*EntraVerifier, error) {
	if cfg.TenantID == "" || cfg.Audience == "" {
		return nil, errors.New("entra verifier: tenant id and audience are required")
	}
	if cfg.AuthorityURL == "" {
		cfg.AuthorityURL = DefaultAuthorityURL
	}
	cfg.AuthorityURL = strings.TrimRight(cfg.AuthorityURL, "/")
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = time.Minute
	}
	if cfg.AdminRole == "" {
		cfg.AdminRole = "Engage.Admin"
	}
	if cfg.IntegrationRole == "" {
		cfg.IntegrationRole = "Engage.Integration"
	}
	if cfg.KeyRefreshEvery == 0 {
		cfg.KeyRefreshEvery = 5 * time.Minute
	}
	v := &EntraVerifier{cfg: cfg, issuers: []string{cfg.AuthorityURL + "/" + cfg.TenantID + "/v2.0"}}
	if cfg.AuthorityURL == DefaultAuthorityURL {
		v.issuers = append(v.issuers, "https://sts.windows.net/"+cfg.TenantID+"/")
	}
	v.audience = []string{cfg.Audience}
	if id, ok := strings.CutPrefix(cfg.Audience, "api://"); ok {
		v.audience = append(v.audience, id)
	} else {
		v.audience = append(v.audience, "api://"+cfg.Audience)
	}

	oidc, err := discover(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(v.issuers, oidc.Issuer) {
		return nil, fmt.Errorf("entra verifier: discovery issuer %q is not the tenant's %q", oidc.Issuer, v.issuers[0])
	}
	store, err := jwkset.NewStorageFromHTTP(oidc.JWKSURI, jwkset.HTTPClientStorageOptions{
		Client:          cfg.HTTPClient,
		Ctx:             ctx,
		HTTPTimeout:     30 * time.Second,
		RefreshInterval: time.Hour,
	})
	if err != nil {
		return nil, fmt.Errorf("entra verifier: load JWKS %s: %w", oidc.JWKSURI, err)
	}
	// Wait at most a tenth of the interval for the limiter: a storm of unknown kids is refused at once
	// instead of queueing requests behind a refresh minutes away.
	client, err := jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs:          map[string]jwkset.Storage{oidc.JWKSURI: store},
		RefreshUnknownKID: rate.NewLimiter(rate.Every(cfg.KeyRefreshEvery), 1),
		RateLimitWaitMax:  min(cfg.KeyRefreshEvery/10, time.Second),
	})
	if err != nil {
		return nil, fmt.Errorf("entra verifier: JWKS client: %w", err)
	}
	v.keys, err = keyfunc.New(keyfunc.Options{Ctx: ctx, Storage: client})
	if err != nil {
		return nil, fmt.Errorf("entra verifier: key function: %w", err)
	}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithExpirationRequired(),
		jwt.WithAudience(v.audience...),
	)
	return v, nil
}

// discover reads the tenant's OpenID configuration for its issuer and JWKS address.
func discover(ctx context.Context, cfg EntraConfig) (openIDConfiguration, error) {
	u := cfg.AuthorityURL + "/" + cfg.TenantID + "/v2.0/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return openIDConfiguration{}, fmt.Errorf("entra verifier: discovery request: %w", err)
	}
	resp, err := cfg.HTTPClient.Do(req)
	if err != nil {
		return openIDConfiguration{}, fmt.Errorf("entra verifier: fetch %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return openIDConfiguration{}, fmt.Errorf("entra verifier: fetch %s: status %s", u, resp.Status)
	}
	var doc openIDConfiguration
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&doc); err != nil {
		return openIDConfiguration{}, fmt.Errorf("entra verifier: decode %s: %w", u, err)
	}
	if doc.JWKSURI == "" {
		return openIDConfiguration{}, fmt.Errorf("entra verifier: %s has no jwks_uri", u)
	}
	return doc, nil
}

// entraClaims are the access token claims Engage reads.
type entraClaims struct {
	jwt.RegisteredClaims
	TenantID          string   `json:"tid"`
	ObjectID          string   `json:"oid"`
	PreferredUsername string   `json:"preferred_username"`
	UPN               string   `json:"upn"`
	Email             string   `json:"email"`
	Name              string   `json:"name"`
	Roles             []string `json:"roles"`
}

// Verify proves the caller from a bearer token (with or without the "Bearer " prefix); every failure
// wraps ErrUnauthenticated.
func (v *EntraVerifier) Verify(ctx context.Context, bearer string) (Identity, error) {
	raw := strings.TrimSpace(bearer)
	if len(raw) > 7 && strings.EqualFold(raw[:7], "bearer ") {
		raw = strings.TrimSpace(raw[7:])
	}
	if raw == "" {
		return Identity{}, fmt.Errorf("%w: no bearer token", ErrUnauthenticated)
	}
	var c entraClaims
	if _, err := v.parser.ParseWithClaims(raw, &c, v.keys.KeyfuncCtx(ctx)); err != nil {
		return Identity{}, fmt.Errorf("%w: entra token: %w", ErrUnauthenticated, err)
	}
	if !slices.Contains(v.issuers, c.Issuer) {
		return Identity{}, fmt.Errorf("%w: entra token: issuer %q not accepted", ErrUnauthenticated, c.Issuer)
	}
	if !strings.EqualFold(c.TenantID, v.cfg.TenantID) {
		return Identity{}, fmt.Errorf("%w: entra token: tenant %q is not %q", ErrUnauthenticated, c.TenantID, v.cfg.TenantID)
	}
	email := c.PreferredUsername
	if email == "" {
		email = c.UPN
	}
	if email == "" {
		email = c.Email
	}
	if email == "" {
		return Identity{}, fmt.Errorf("%w: entra token: no preferred_username, upn or email", ErrUnauthenticated)
	}
	return Identity{
		Email:       strings.ToLower(email),
		Name:        c.Name,
		Admin:       slices.Contains(c.Roles, v.cfg.AdminRole),
		Integration: slices.Contains(c.Roles, v.cfg.IntegrationRole),
		TenantID:    c.TenantID,
		ObjectID:    c.ObjectID,
		Token:       raw,
	}, nil
}
