package model

import (
	"fmt"
	"io"

	"github.com/99designs/gqlgen/graphql"

	"github.com/engage-email/engage/followed"
)

// Upload is the Upload scalar: gqlgen's file from a multipart request, with a clear BAD_USER_INPUT when
// a client sends something else (a string in a JSON request) where the file should be.
type Upload struct{ graphql.Upload }

// UnmarshalGQL accepts only a file the multipart transport put in the variables.
func (u *Upload) UnmarshalGQL(v any) error {
	up, ok := v.(graphql.Upload)
	if !ok {
		return fmt.Errorf("%w: the file must be sent as a part of a multipart request (GraphQL multipart request spec), not as %T",
			followed.ErrBadInput, v)
	}
	u.Upload = up
	return nil
}

// MarshalGQL writes nothing: files are never sent back.
func (u Upload) MarshalGQL(io.Writer) {}
