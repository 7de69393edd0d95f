// Package auth says who is calling Engage: in local mode an email from a header, with a tenant an
// Entra ID access token. Features receive an Identity and never look at how it was proven.
package auth

import (
	"context"
	"errors"
)

// ErrUnauthenticated means the caller proved no identity.
var ErrUnauthenticated = errors.New("unauthenticated")

// ErrForbidden means the caller is known but may not do this.
var ErrForbidden = errors.New("forbidden")

// Identity is a proven caller.
type Identity struct {
	Email       string // lower-cased address, the owner key of followed messages
	Name        string
	Admin       bool
	Integration bool   // a system (a CRM) that may read the response feed, without an admin's powers
	TenantID    string // empty in local mode
	ObjectID    string // Entra ID object id (oid); empty in local mode
	Token       string // the raw bearer token, kept for the on-behalf-of flow; empty in local mode
}

type ctxKey struct{}

// WithIdentity returns a context carrying id.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the caller, or ErrUnauthenticated when there is none.
func FromContext(ctx context.Context) (Identity, error) {
	id, ok := ctx.Value(ctxKey{}).(Identity)
	if !ok || id.Email == "" {
		return Identity{}, ErrUnauthenticated
	}
	return id, nil
}

// Deny returns an error that matches ErrForbidden and tells the caller why, in words fit to show them.
func Deny(reason string) error { return &deniedError{reason: reason} }

type deniedError struct{ reason string }

func (e *deniedError) Error() string        { return ErrForbidden.Error() + ": " + e.reason }
func (e *deniedError) Is(target error) bool { return target == ErrForbidden }
