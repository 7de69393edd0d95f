// Package graph translates GraphQL to feature calls and back; it holds no rules of its own.
package graph

//go:generate go -C .. tool gqlgen generate

import (
	"github.com/engage-email/engage/followed"
)

// Resolver holds the features the resolvers call; cmd/engage builds it.
type Resolver struct {
	Followed *followed.Service
}
