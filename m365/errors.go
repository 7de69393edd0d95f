package m365

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	abs "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"
)

// Sentinels callers test with errors.Is, whatever Graph's error code was.
var (
	// ErrNotFound means the mailbox or message does not exist (or is not visible to the caller).
	ErrNotFound = errors.New("m365: not found")
	// ErrPermission means the token is valid but lacks a permission (403), e.g. Mail.Send not granted.
	ErrPermission = errors.New("m365: permission denied")
	// ErrUnauthorized means Entra ID or Graph refused the credential (bad secret, expired user token).
	ErrUnauthorized = errors.New("m365: unauthorized")
	// ErrThrottled means Graph still throttled or was unavailable after the allowed retries.
	ErrThrottled = errors.New("m365: throttled")
)

// GraphError is Graph's answer to a failed call, kept whole so logs and callers can say what went wrong.
type GraphError struct {
	Status  int
	Code    string // Graph's error code, e.g. ErrorAccessDenied
	Message string
	// RetryAfter is Graph's requested wait on a throttled answer, zero when none was given.
	RetryAfter time.Duration
	Op         string // what Engage was doing, e.g. "send draft"
}

func (e *GraphError) Error() string {
	msg := fmt.Sprintf("m365: %s: graph answered %d %s", e.Op, e.Status, http.StatusText(e.Status))
	if e.Code != "" {
		msg += " (" + e.Code + ")"
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf("; retry after %s", e.RetryAfter)
	}
	return msg
}

// Is lets errors.Is match the sentinels by status.
func (e *GraphError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrPermission:
		return e.Status == http.StatusForbidden
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	case ErrThrottled:
		return e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable ||
			e.Status == http.StatusGatewayTimeout
	}
	return false
}

// graphErr turns the SDK's error into a *GraphError when Graph answered, else wraps it saying what failed.
func graphErr(op string, err error) error {
	var api abs.ApiErrorable
	if !errors.As(err, &api) {
		return fmt.Errorf("m365: %s: %w", op, err)
	}
	ge := &GraphError{Status: api.GetStatusCode(), Op: op}
	var odata *odataerrors.ODataError
	if errors.As(err, &odata) {
		if main := odata.GetErrorEscaped(); main != nil {
			if c := main.GetCode(); c != nil {
				ge.Code = *c
			}
			if m := main.GetMessage(); m != nil {
				ge.Message = *m
			}
		}
	}
	if ge.Message == "" {
		ge.Message = err.Error()
	}
	if h := api.GetResponseHeaders(); h != nil {
		for _, key := range []string{"Retry-After", "retry-after"} {
			if v := h.Get(key); len(v) > 0 {
				if d, ok := parseRetryAfter(v[0], time.Now()); ok {
					ge.RetryAfter = d
				}
				break
			}
		}
	}
	return ge
}
