// Package storetest is the conformance suite every backend passes: the store contract, concurrency
// rules included, written once and run against SQLite here and MongoDB wherever one is reachable.
package storetest

import (
	"testing"

	"github.com/engage-email/engage/followed"
)

// Stores are a backend's implementations of the features' store interfaces, all on one fresh database.
type Stores struct {
	Followed followed.Store
}

// Run runs the whole suite; open returns fresh, empty stores for each test.
func Run(t *testing.T, open func(t *testing.T) Stores) {
	t.Run("followed", func(t *testing.T) { runFollowed(t, open) })
}
