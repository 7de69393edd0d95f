package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/engage-email/engage/attachments"
	"github.com/engage-email/engage/auth"
	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/recommend"
	"github.com/engage-email/engage/store"
)

// Error codes in the "code" extension of every error Engage returns.
const (
	CodeUnauthenticated = "UNAUTHENTICATED"
	CodeForbidden       = "FORBIDDEN"
	CodeNotFound        = "NOT_FOUND"
	CodeBadUserInput    = "BAD_USER_INPUT"
	CodeUnavailable     = "UNAVAILABLE"
	CodeInternal        = "INTERNAL"
)

// ErrUnavailable marks a dependency (the store, Microsoft 365) that cannot be reached right now.
var ErrUnavailable = errors.New("unavailable")

// errPanicked is what a recovered panic becomes; Recover has logged it already.
var errPanicked = errors.New("internal error")

// ErrorPresenter is the one place where errors become GraphQL errors: callers' mistakes keep their
// message, everything else is logged with the request id and answered with a bland INTERNAL.
func ErrorPresenter(log *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		gqlErr := graphql.DefaultErrorPresenter(ctx, err)
		var original *gqlerror.Error
		if errors.As(err, &original) && original.Extensions != nil && original.Extensions["code"] != nil {
			return gqlErr // parse and validation errors already carry their code
		}
		code, msg := classify(err)
		if code == "" {
			if errors.As(err, &original) && original.Err == nil {
				return gqlErr // gqlgen's own errors (e.g. complexity) speak for themselves
			}
			code, msg = CodeInternal, "internal error"
			if log != nil {
				log.ErrorContext(ctx, "graphql resolver failed", "path", gqlErr.Path.String(), "err", err)
			}
		}
		gqlErr.Message = msg
		if gqlErr.Extensions == nil {
			gqlErr.Extensions = map[string]any{}
		}
		gqlErr.Extensions["code"] = code
		return gqlErr
	}
}

func classify(err error) (code, msg string) {
	switch {
	case errors.Is(err, auth.ErrUnauthenticated):
		return CodeUnauthenticated, "not signed in"
	case errors.Is(err, auth.ErrForbidden):
		return CodeForbidden, "not allowed: " + userMessage(err, auth.ErrForbidden)
	case errors.Is(err, followed.ErrNotFound):
		return CodeNotFound, "not found"
	case errors.Is(err, followed.ErrBadInput):
		return CodeBadUserInput, userMessage(err, followed.ErrBadInput)
	case errors.Is(err, recommend.ErrNotFound):
		return CodeNotFound, "not found"
	case errors.Is(err, recommend.ErrBadInput):
		return CodeBadUserInput, userMessage(err, recommend.ErrBadInput)
	case errors.Is(err, attachments.ErrTooLarge):
		return CodePayloadTooLarge, userMessage(err, attachments.ErrTooLarge)
	case errors.Is(err, errPanicked):
		return CodeInternal, "internal error"
	case errors.Is(err, ErrUnavailable), errors.Is(err, store.ErrUnavailable):
		return CodeUnavailable, "temporarily unavailable, try again shortly"
	}
	return "", ""
}

// notFoundAs words a NOT_FOUND from err as msg, for a resolver that knows better than "not found" what
// was missing; any other error is returned as it is.
func notFoundAs(err error, msg string) error {
	if !errors.Is(err, followed.ErrNotFound) {
		return err
	}
	return &gqlerror.Error{Err: err, Message: msg, Extensions: map[string]any{"code": CodeNotFound}}
}

// userMessage is the text after the sentinel's own words, e.g. "bad input: the message has no body"
// becomes "the message has no body". A sentinel wrapped last ("the template's name is empty: bad
// input", as recommend words it) gives the words of the error that wrapped it, without the query
// position and field gqlgen puts before them.
func userMessage(err, sentinel error) string {
	s := err.Error()
	if _, after, ok := strings.Cut(s, sentinel.Error()+": "); ok {
		return after
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		if errors.Unwrap(e) == sentinel {
			return strings.TrimSuffix(e.Error(), ": "+sentinel.Error())
		}
	}
	return s
}

// Recover turns a resolver panic into an INTERNAL error and a log line, never a dead server.
func Recover(log *slog.Logger) graphql.RecoverFunc {
	return func(ctx context.Context, p any) error {
		log.ErrorContext(ctx, "graphql resolver panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		return errPanicked
	}
}
