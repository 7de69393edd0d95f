package store

import "errors"

// ErrUnavailable marks a store error caused by the database being unreachable (network, failover, no
// primary), as opposed to a bad request: the API answers it with UNAVAILABLE and callers may retry.
var ErrUnavailable = errors.New("store unavailable")
