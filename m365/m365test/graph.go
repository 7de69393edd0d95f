// Package m365test fakes Microsoft's cloud for tests: a Microsoft Graph server speaking the documented wire
// format for the calls Engage makes, recording every request and able to inject failures. The fake Entra ID
// authority lives in entratest, which links neither msgraph nor MSAL.
package m365test

import (
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/engage-email/engage/m365/m365test/entratest"
)

// Request is one request the fake Graph received, with its body decoded, so tests can assert exact calls.
type Request struct {
	Method        string
	Path          string // without the /v1.0 prefix, e.g. /users/alice@contoso.com/messages
	Query         url.Values
	Authorization string
	Prefer        string
	Body          map[string]any // decoded JSON body, gunzipped; nil when empty or binary
	ContentRange  string         // of an upload slice
	ContentLength int64          // of a binary body (file content), which is not kept
}

// Fault makes the next Times requests matching Method and Path fail with Status.
type Fault struct {
	Method     string // empty matches any method
	Path       string // exact path without /v1.0; a trailing "*" matches any path with the prefix before it
	Times      int
	Status     int
	RetryAfter string // Retry-After header value, if any
	Code       string // Graph error code, e.g. ErrorAccessDenied
	Message    string
}

// Graph is a fake Microsoft Graph v1.0 endpoint served over TLS.
type Graph struct {
	srv       *httptest.Server
	authority *entratest.Authority

	mu        sync.Mutex
	requests  []Request
	faults    []*Fault
	messages  map[string]map[string]any // by id
	owners    map[string]string         // message id -> lower-cased mailbox
	mailboxes map[string]map[string]any // lower-cased mailbox -> mailboxSettings
	seq       int
	drive     *drive       // OneDrive files, upload sessions and sharing links (drive.go)
	inbox     inbox        // Inbox subscriptions, delivered mail and delta state (inbox.go)
	attach    *attachState // message attachment upload sessions (attachments.go)
}

// NewGraph starts a fake Graph; it stops when t ends.
func NewGraph(t testing.TB) *Graph {
	t.Helper()
	g := &Graph{
		messages:  map[string]map[string]any{},
		owners:    map[string]string{},
		mailboxes: map[string]map[string]any{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1.0/users/{user}/messages", g.createMessage)
	mux.HandleFunc("POST /v1.0/users/{user}/messages/{id}/send", g.sendMessage)
	mux.HandleFunc("GET /v1.0/users/{user}/messages/{id}", g.getMessage)
	mux.HandleFunc("GET /v1.0/users/{user}/mailboxSettings", g.getMailboxSettings)
	g.driveRoutes(mux)
	g.inboxRoutes(mux)
	g.sentRoutes(mux)
	g.attachmentRoutes(mux)
	g.srv = httptest.NewTLSServer(g.record(mux))
	t.Cleanup(g.srv.Close)
	return g
}

// URL is the Graph base URL, ending in /v1.0 like the real one.
func (g *Graph) URL() string { return g.srv.URL + "/v1.0" }

// Client is an HTTP client that trusts the fake's TLS certificate.
func (g *Graph) Client() *http.Client { return g.srv.Client() }

// VerifyTokens makes the fake check every bearer token against a, as Graph would: unsigned or foreign
// tokens get 401 and a delegated token may only reach its own mailbox (403 otherwise).
func (g *Graph) VerifyTokens(a *entratest.Authority) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.authority = a
}

// Requests returns every request received so far, in order.
func (g *Graph) Requests() []Request {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]Request(nil), g.requests...)
}

// Fail queues a fault; faults are matched in the order they were added.
func (g *Graph) Fail(f Fault) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.faults = append(g.faults, &f)
}

// SetMailboxSettings sets the mailboxSettings resource (Graph JSON) returned for user.
func (g *Graph) SetMailboxSettings(user string, settings map[string]any) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.mailboxes[strings.ToLower(user)] = settings
}

// Message returns the stored state of a message by id.
func (g *Graph) Message(id string) (map[string]any, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	m, ok := g.messages[id]
	return m, ok
}

// record decodes and stores each request, then applies injected faults and token checks.
func (g *Graph) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		var err error
		if !binaryBody(r) {
			body, err = readBody(r)
		}
		if err != nil {
			graphError(w, http.StatusBadRequest, "BadRequest", err.Error())
			return
		}
		req := Request{
			Method:        r.Method,
			Path:          strings.TrimPrefix(r.URL.Path, "/v1.0"),
			Query:         r.URL.Query(),
			Authorization: r.Header.Get("Authorization"),
			Prefer:        r.Header.Get("Prefer"),
			Body:          body,
			ContentRange:  r.Header.Get("Content-Range"),
		}
		if binaryBody(r) {
			req.ContentLength = r.ContentLength
		}
		g.mu.Lock()
		g.requests = append(g.requests, req)
		fault := g.takeFault(req)
		authority := g.authority
		g.mu.Unlock()
		if fault != nil {
			if fault.RetryAfter != "" {
				w.Header().Set("Retry-After", fault.RetryAfter)
			}
			graphError(w, fault.Status, fault.Code, fault.Message)
			return
		}
		if authority != nil && !isUploadURL(req.Path) && !authorized(w, r, authority) {
			return
		}
		if body != nil {
			raw, err := json.Marshal(body)
			if err != nil {
				graphError(w, http.StatusInternalServerError, "InternalServerError", err.Error())
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(raw))
		}
		next.ServeHTTP(w, r)
	})
}

// takeFault returns the first queued fault matching req and uses one of its times; g.mu is held.
func (g *Graph) takeFault(req Request) *Fault {
	for i, f := range g.faults {
		prefix, wild := strings.CutSuffix(f.Path, "*")
		if (f.Path != req.Path && !(wild && strings.HasPrefix(req.Path, prefix))) || (f.Method != "" && f.Method != req.Method) {
			continue
		}
		f.Times--
		if f.Times <= 0 {
			g.faults = append(g.faults[:i], g.faults[i+1:]...)
		}
		return f
	}
	return nil
}

// authorized checks the bearer token as Graph does; it writes the error response when it fails.
func authorized(w http.ResponseWriter, r *http.Request, a *entratest.Authority) bool {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		graphError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token is empty.")
		return false
	}
	claims, err := a.Parse(raw)
	if err != nil || claims["aud"] != entratest.GraphAudience {
		graphError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
		return false
	}
	if claims["idtyp"] == "user" {
		user := strings.ToLower(pathUser(r.URL.Path))
		upn, _ := claims["upn"].(string)
		if user != strings.ToLower(upn) && user != claims["oid"] {
			graphError(w, http.StatusForbidden, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
			return false
		}
	}
	return true
}

// pathUser extracts the {user} segment of /v1.0/users/{user}/...
func pathUser(p string) string {
	parts := strings.Split(strings.TrimPrefix(p, "/v1.0/users/"), "/")
	u, err := url.PathUnescape(parts[0])
	if err != nil {
		return parts[0]
	}
	return u
}

func readBody(r *http.Request) (map[string]any, error) {
	var src io.Reader = r.Body
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, fmt.Errorf("gunzip request body: %w", err)
		}
		defer zr.Close()
		src = zr
	}
	raw, err := io.ReadAll(src)
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		return nil, fmt.Errorf("request body is not a JSON object: %w", err)
	}
	return body, nil
}

// graphError writes Graph's error envelope.
func graphError(w http.ResponseWriter, status int, code, message string) {
	if code == "" {
		code = http.StatusText(status)
	}
	writeJSON(w, status, map[string]any{"error": map[string]any{
		"code":    code,
		"message": message,
		"innerError": map[string]any{
			"date":              time.Now().UTC().Format(time.RFC3339),
			"request-id":        "11111111-2222-3333-4444-555555555555",
			"client-request-id": "11111111-2222-3333-4444-555555555555",
		},
	}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// tokenClaims decodes a bearer token's claims without verifying it, for tests that inspect who called.
func tokenClaims(authorization string) (jwt.MapClaims, error) {
	raw, ok := strings.CutPrefix(authorization, "Bearer ")
	if !ok {
		return nil, fmt.Errorf("authorization %q is not a bearer token", authorization)
	}
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(raw, claims); err != nil {
		return nil, fmt.Errorf("parse bearer token: %w", err)
	}
	return claims, nil
}

// Caller says which identity a recorded request carried: "app" for an app-only token or the user's UPN for
// a delegated (on-behalf-of) one.
func (r Request) Caller() (string, error) {
	c, err := tokenClaims(r.Authorization)
	if err != nil {
		return "", err
	}
	if c["idtyp"] == "app" {
		return "app", nil
	}
	upn, _ := c["upn"].(string)
	if upn == "" {
		return "", fmt.Errorf("token has neither idtyp=app nor upn")
	}
	return upn, nil
}

// Certificate is the fake's TLS certificate, for clients that must trust several fakes at once.
func (g *Graph) Certificate() *x509.Certificate { return g.srv.Certificate() }

// Client returns an HTTP client trusting the TLS certificates of the given fakes (Graph and authority),
// as one client is handed to both MSAL and the Graph SDK.
func Client(fakes ...interface{ Certificate() *x509.Certificate }) *http.Client {
	pool := x509.NewCertPool()
	for _, f := range fakes {
		pool.AddCert(f.Certificate())
	}
	return &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
	}
}
