package auth

import (
	"context"
	"fmt"
	"net/http"
	"net/mail"
	"strings"
)

// LocalHeader carries the caller's email in local mode, on HTTP requests and in websocket connection_init.
const LocalHeader = "X-Engage-User"

// Local trusts the caller's word: it is for a single machine with no tenant, which is why the server
// refuses to listen beyond loopback in this mode unless told otherwise.
type Local struct {
	admins       map[string]bool
	integrations map[string]bool
}

// NewLocal returns the local-mode authenticator; admins are email addresses.
func NewLocal(admins []string) *Local {
	l := &Local{admins: map[string]bool{}}
	for _, a := range admins {
		if a = strings.ToLower(strings.TrimSpace(a)); a != "" {
			l.admins[a] = true
		}
	}
	return l
}

// WithIntegrations names the callers that are integrations (a CRM reading the response feed) and
// returns l, so that NewLocal's callers stay as they are.
func (l *Local) WithIntegrations(emails []string) *Local {
	l.integrations = map[string]bool{}
	for _, e := range emails {
		if e = strings.ToLower(strings.TrimSpace(e)); e != "" {
			l.integrations[e] = true
		}
	}
	return l
}

// Authenticate reads the caller from the X-Engage-User header.
func (l *Local) Authenticate(_ context.Context, r *http.Request) (Identity, error) {
	return l.identity(r.Header.Get(LocalHeader))
}

// AuthenticateInit reads the caller from a websocket connection_init payload.
func (l *Local) AuthenticateInit(_ context.Context, payload map[string]any) (Identity, error) {
	v, _ := payload[LocalHeader].(string)
	return l.identity(v)
}

func (l *Local) identity(v string) (Identity, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return Identity{}, fmt.Errorf("%w: no %s header", ErrUnauthenticated, LocalHeader)
	}
	email, err := NormalizeEmail(v)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %s: %v", ErrUnauthenticated, LocalHeader, err)
	}
	return Identity{Email: email, Admin: l.admins[email], Integration: l.integrations[email]}, nil
}

// NormalizeEmail checks that s is a bare address and lower-cases it, so one person has one key.
func NormalizeEmail(s string) (string, error) {
	a, err := mail.ParseAddress(strings.TrimSpace(s))
	if err != nil {
		return "", fmt.Errorf("%q is not an email address", s)
	}
	if a.Name != "" || !strings.Contains(a.Address, "@") || strings.ContainsAny(a.Address, " <>\t\r\n") {
		return "", fmt.Errorf("%q is not a bare email address", s)
	}
	return strings.ToLower(a.Address), nil
}
