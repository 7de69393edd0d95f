package model

import (
	"fmt"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/engage-email/engage/followed"
)

// MarshalTime writes the Time scalar as gqlgen does: RFC 3339 with nanoseconds.
func MarshalTime(t time.Time) graphql.Marshaler { return graphql.MarshalTime(t) }

// UnmarshalTime reads the Time scalar, answering anything but an RFC 3339 time with a BAD_USER_INPUT
// that says what to send, where gqlgen's own error reached callers as an internal one.
func UnmarshalTime(v any) (time.Time, error) {
	t, err := graphql.UnmarshalTime(v)
	if err != nil {
		what := fmt.Sprintf("a %T", v)
		if s, ok := v.(string); ok {
			what = fmt.Sprintf("%.40q", s)
		}
		return time.Time{}, fmt.Errorf("%w: %s is not a time: send one in RFC 3339, such as 2026-11-23T09:00:00Z", followed.ErrBadInput, what)
	}
	return t, nil
}
