// Package model holds the GraphQL types: gqlgen writes models_gen.go, the rest bind feature types.
package model
