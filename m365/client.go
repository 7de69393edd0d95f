// Package m365 is Engage's Microsoft 365 adapter: it drafts and sends mail and reads mailbox settings through
// Microsoft Graph, with MSAL tokens (on behalf of the user, or app-only for background work). It is the only
// package that links msgraph-sdk-go (its subpackages, never the root) and MSAL.
package m365

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	abs "github.com/microsoft/kiota-abstractions-go"
	absauth "github.com/microsoft/kiota-abstractions-go/authentication"
	absser "github.com/microsoft/kiota-abstractions-go/serialization"
	khttp "github.com/microsoft/kiota-http-go"
	jsonser "github.com/microsoft/kiota-serialization-json-go"
	textser "github.com/microsoft/kiota-serialization-text-go"
	"github.com/microsoftgraph/msgraph-sdk-go/users"
)

// Default endpoints of Microsoft's global cloud.
const (
	DefaultGraphURL     = "https://graph.microsoft.com/v1.0"
	DefaultAuthorityURL = "https://login.microsoftonline.com"
)

// Config says which tenant and application Engage acts as, and where Microsoft's endpoints are.
type Config struct {
	TenantID, ClientID, ClientSecret string
	// CertificatePath is a PEM file with the certificate and its private key, used instead of ClientSecret.
	CertificatePath string
	GraphURL        string // default DefaultGraphURL
	AuthorityURL    string // default DefaultAuthorityURL
	HTTPClient      *http.Client
	// MaxAttempts bounds the tries of one Graph call when throttled (429) or unavailable; default 4.
	MaxAttempts int
	// MaxRetryDelay caps one wait between tries; a longer Retry-After fails the call at once (the caller's
	// scheduler can come back later); default 30 seconds.
	MaxRetryDelay time.Duration
}

// Caller says whose mailbox a call reaches and with which credential.
type Caller struct {
	User      string // UPN or object id of the mailbox
	UserToken string // the user's access token for the on-behalf-of flow; "" means app-only (background work)
}

// Client reaches Microsoft Graph for Engage; it is safe for concurrent use.
type Client struct {
	graphURL string
	http     *http.Client
	tokens   *tokens
	parse    absser.ParseNodeFactory
	write    absser.SerializationWriterFactory
}

// New builds a client without I/O: tokens are acquired, and the authority discovered, on the first call.
// ctx is taken for symmetry with the other constructors and does not outlive New.
func New(_ context.Context, cfg Config) (*Client, error) {
	if cfg.TenantID == "" || cfg.ClientID == "" {
		return nil, errors.New("m365: tenant id and client id are required")
	}
	if cfg.GraphURL == "" {
		cfg.GraphURL = DefaultGraphURL
	}
	if cfg.AuthorityURL == "" {
		cfg.AuthorityURL = DefaultAuthorityURL
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 100 * time.Second}
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 4
	}
	if cfg.MaxRetryDelay <= 0 {
		cfg.MaxRetryDelay = 30 * time.Second
	}
	if u, err := url.Parse(cfg.GraphURL); err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("m365: graph URL %q must be an absolute https URL", cfg.GraphURL)
	}
	tok, err := newTokens(cfg)
	if err != nil {
		return nil, err
	}
	c := &Client{
		graphURL: strings.TrimRight(cfg.GraphURL, "/"),
		http:     graphHTTPClient(cfg),
		tokens:   tok,
		parse:    parseNodeFactory(),
		write:    serializationWriterFactory(),
	}
	return c, nil
}

// graphHTTPClient puts kiota's middleware (compression, redirects, user agent) over our retry transport,
// which sits closest to the wire so every try sends the same bytes.
func graphHTTPClient(cfg Config) *http.Client {
	base := cfg.HTTPClient.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	rt := &retryTransport{
		base:        base,
		maxAttempts: cfg.MaxAttempts,
		maxDelay:    cfg.MaxRetryDelay,
		baseDelay:   500 * time.Millisecond,
	}
	transport := khttp.NewCustomTransportWithParentTransport(rt,
		khttp.NewUserAgentHandler(),
		khttp.NewParametersNameDecodingHandler(),
		khttp.NewRedirectHandler(),
		khttp.NewCompressionHandler(),
	)
	return &http.Client{
		Transport: transport,
		Timeout:   cfg.HTTPClient.Timeout,
		// The redirect middleware follows redirects itself.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// parseNodeFactory registers the content types Graph answers with, without touching kiota's global registry.
func parseNodeFactory() absser.ParseNodeFactory {
	r := absser.NewParseNodeFactoryRegistry()
	for _, f := range []absser.ParseNodeFactory{jsonser.NewJsonParseNodeFactory(), textser.NewTextParseNodeFactory()} {
		ct, err := f.GetValidContentType()
		if err == nil {
			r.ContentTypeAssociatedFactories[ct] = f
		}
	}
	return r
}

func serializationWriterFactory() absser.SerializationWriterFactory {
	r := absser.NewSerializationWriterFactoryRegistry()
	for _, f := range []absser.SerializationWriterFactory{jsonser.NewJsonSerializationWriterFactory(), textser.NewTextSerializationWriterFactory()} {
		ct, err := f.GetValidContentType()
		if err == nil {
			r.ContentTypeAssociatedFactories[ct] = f
		}
	}
	return r
}

// user returns the request builder for the caller's mailbox, authenticated for that caller.
func (c *Client) user(caller Caller) (*users.UserItemRequestBuilder, error) {
	if caller.User == "" {
		return nil, errors.New("m365: caller has no mailbox (User is empty)")
	}
	adapter, err := khttp.NewNetHttpRequestAdapterWithParseNodeFactoryAndSerializationWriterFactoryAndHttpClient(
		&authProvider{tokens: c.tokens, caller: caller}, c.parse, c.write, c.http)
	if err != nil {
		return nil, fmt.Errorf("m365: request adapter: %w", err)
	}
	adapter.SetBaseUrl(c.graphURL)
	root := users.NewUsersRequestBuilderInternal(map[string]string{"baseurl": c.graphURL}, adapter)
	return root.ByUserId(caller.User), nil
}

// immutableIDs asks Graph for ids that do not change when a message moves (Drafts to Sent Items), so a
// message can be found again by the id returned when it was drafted.
func immutableIDs() *abs.RequestHeaders {
	h := abs.NewRequestHeaders()
	h.Add("Prefer", `IdType="ImmutableId"`)
	return h
}

// authProvider puts the caller's Graph token on each request.
type authProvider struct {
	tokens *tokens
	caller Caller
}

var _ absauth.AuthenticationProvider = (*authProvider)(nil)

func (p *authProvider) AuthenticateRequest(ctx context.Context, req *abs.RequestInformation, _ map[string]any) error {
	tok, err := p.tokens.forCaller(ctx, p.caller)
	if err != nil {
		return err
	}
	req.Headers.Add("Authorization", "Bearer "+tok)
	return nil
}
