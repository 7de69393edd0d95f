package entratest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Grant types of the token endpoint, as sent by MSAL.
const (
	GrantClientCredentials = "client_credentials"
	GrantJWTBearer         = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	assertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
)

// RegisterCertificate gives ClientID a self-signed certificate credential and returns the PEM (certificate
// then PKCS#8 private key) a client would load from disk.
func (a *Authority) RegisterCertificate(t testing.TB) []byte {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("entratest: generate certificate key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "engage-test-app"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatalf("entratest: create certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("entratest: parse certificate: %v", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatalf("entratest: marshal private key: %v", err)
	}
	a.mu.Lock()
	a.certs[ClientID] = cert
	a.mu.Unlock()
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return append(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...)
}

// token serves the v2.0 token endpoint for the client credentials and on-behalf-of grants.
func (a *Authority) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		aadError(w, http.StatusBadRequest, "invalid_request", "AADSTS900144: malformed form body", 900144)
		return
	}
	tenant := r.PathValue("tenant")
	req := TokenRequest{
		GrantType:         r.PostForm.Get("grant_type"),
		ClientID:          r.PostForm.Get("client_id"),
		Scope:             r.PostForm.Get("scope"),
		RequestedTokenUse: r.PostForm.Get("requested_token_use"),
		Assertion:         r.PostForm.Get("assertion"),
		ClientAssertion:   r.PostForm.Get("client_assertion") != "",
	}
	a.mu.Lock()
	a.requests = append(a.requests, req)
	a.mu.Unlock()

	if tenant != TenantID {
		aadError(w, http.StatusBadRequest, "invalid_tenant", "AADSTS90002: Tenant '"+tenant+"' not found.", 90002)
		return
	}
	if !a.clientAuthenticated(r, tenant) {
		aadError(w, http.StatusUnauthorized, "invalid_client", "AADSTS7000215: Invalid client secret provided.", 7000215)
		return
	}
	if !strings.Contains(req.Scope, GraphAudience+"/.default") {
		aadError(w, http.StatusBadRequest, "invalid_scope", "AADSTS70011: The provided value for scope is not valid.", 70011)
		return
	}
	now := time.Now()
	claims := jwt.MapClaims{
		"aud":   GraphAudience,
		"iss":   a.Issuer(),
		"iat":   now.Unix(),
		"nbf":   now.Unix(),
		"exp":   now.Add(time.Hour).Unix(),
		"tid":   TenantID,
		"appid": req.ClientID,
		"ver":   "1.0",
	}
	switch {
	case req.GrantType == GrantClientCredentials:
		claims["idtyp"] = "app"
		claims["oid"] = AppObjectID
		claims["roles"] = []string{"Mail.Send", "Mail.ReadWrite", "MailboxSettings.Read"}
	case req.GrantType == GrantJWTBearer && req.RequestedTokenUse == "on_behalf_of":
		user, err := a.Parse(req.Assertion)
		if err != nil || user["aud"] != "api://"+ClientID {
			aadError(w, http.StatusBadRequest, "invalid_grant", "AADSTS50013: Assertion failed signature validation.", 50013)
			return
		}
		claims["idtyp"] = "user"
		claims["oid"] = user["oid"]
		claims["upn"] = user["preferred_username"]
		claims["scp"] = "Mail.ReadWrite Mail.Send MailboxSettings.Read"
	default:
		aadError(w, http.StatusBadRequest, "unsupported_grant_type", "AADSTS70003: unsupported grant type", 70003)
		return
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	k := a.Current()
	tok.Header["kid"] = k.Kid
	signed, err := tok.SignedString(k.Private)
	if err != nil {
		aadError(w, http.StatusInternalServerError, "server_error", "AADSTS50000: signing failed", 50000)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"token_type":     "Bearer",
		"scope":          GraphAudience + "/.default",
		"expires_in":     3599,
		"ext_expires_in": 3599,
		"access_token":   signed,
	})
}

// clientAuthenticated checks the client secret, or the certificate-signed client assertion.
func (a *Authority) clientAuthenticated(r *http.Request, tenant string) bool {
	clientID := r.PostForm.Get("client_id")
	a.mu.Lock()
	secret, hasSecret := a.secrets[clientID]
	cert := a.certs[clientID]
	a.mu.Unlock()
	if s := r.PostForm.Get("client_secret"); s != "" {
		return hasSecret && s == secret
	}
	assertion := r.PostForm.Get("client_assertion")
	if assertion == "" || cert == nil || r.PostForm.Get("client_assertion_type") != assertionTypeJWTBearer {
		return false
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(assertion, claims, func(*jwt.Token) (any, error) {
		return cert.PublicKey, nil
	}, jwt.WithValidMethods([]string{"PS256", "RS256"}),
		jwt.WithAudience(a.srv.URL+"/"+tenant+"/oauth2/v2.0/token"),
		jwt.WithIssuer(clientID), jwt.WithSubject(clientID))
	return err == nil
}

func aadError(w http.ResponseWriter, status int, code, description string, aadCode int) {
	writeJSON(w, status, map[string]any{
		"error":             code,
		"error_description": description,
		"error_codes":       []int{aadCode},
		"timestamp":         time.Now().UTC().Format("2006-01-02 15:04:05Z"),
		"trace_id":          "00000000-0000-0000-0000-000000000000",
		"correlation_id":    "00000000-0000-0000-0000-000000000000",
	})
}
