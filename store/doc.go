// Package store holds what every backend shares and no feature needs to know: the error a backend
// wraps when its database cannot be reached, and the row format stores are copied between backends in.
package store
