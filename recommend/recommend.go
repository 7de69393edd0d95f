// Package recommend advises when to send and which templates work: a per-recipient hour-of-week
// engagement model smoothed toward domain, organisation and working hours, with Thompson-style
// exploration, and Beta-posterior template ranking. It reads aggregates through its own Store.
package recommend

import "errors"

// ErrBadInput marks a caller's mistake (empty or oversized recipient list, bad count), so the API can
// answer with a clear message instead of a server error.
var ErrBadInput = errors.New("bad input")

// Limits of one send-time question, so a single call stays cheap and an answer stays readable.
const (
	MaxRecipients = 100
	MaxCount      = 24
	DefaultCount  = 3
	// DefaultExplore is the share of answers drawn from a posterior sample, so the model keeps learning
	// about hours it would otherwise never try.
	DefaultExplore = 0.1
	// Horizon is how far ahead slots are considered: one week covers every hour-of-week.
	Horizon = HoursPerWeek
)
