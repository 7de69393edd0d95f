package recommend

import (
	"math"
	"time"
)

// Burial: a message is read mostly before newer mail pushes it down the inbox, and mail arrives mostly
// in working hours, so a message delivered late in the evening is still near the top the next morning.
const (
	lookaheadHours = 72   // long enough to carry a Friday evening delivery to Monday morning
	lookaheadScale = 4.0  // office hours of incoming mail that make reading a message e times less likely
	quietWeight    = 0.25 // incoming mail in an hour outside working hours, relative to an office hour
	// A reader who looks at the inbox and passes over a message is less likely to open it later: each
	// expected reading session between delivery and an hour costs that hour e^-skipCost of its value.
	sessionsPerWeek = 15.0 // reading sessions of a typical recipient, scaling a normalised reading shape
	skipCost        = 0.5
)

// burialTable holds, for a delivery in each local hour-of-week, how much of its chance of being read is
// left k hours later; it is the same for everyone, so a SendTimes builds it once.
type burialTable [HoursPerWeek][lookaheadHours]float64

func newBurialTable() *burialTable {
	var step week
	for h := range step {
		busy := quietWeight
		if inWorkingHours(h) {
			busy = 1
		}
		step[h] = math.Exp(-busy / lookaheadScale)
	}
	bt := new(burialTable)
	for s := range bt {
		left := 1.0
		for k := range lookaheadHours {
			bt[s][k] = left
			left *= step[(s+k)%HoursPerWeek]
		}
	}
	return bt
}

// lookahead turns a reading shape into the relative engagement of a message delivered at each hour:
// reading soon after delivery, before the message is buried by newer mail or passed over in earlier
// sessions, is what counts. 1 is an average hour.
func (bt *burialTable) lookahead(shape *week) week {
	var out week
	total := 0.0
	for s := range out {
		v, seen := 0.0, 0.0
		for k, left := range bt[s] {
			r := shape[(s+k)%HoursPerWeek]
			v += left * r * math.Exp(-skipCost*seen)
			seen += r * sessionsPerWeek
		}
		out[s] = v
		total += v
	}
	if total <= 0 {
		return out
	}
	for s := range out {
		out[s] *= HoursPerWeek / total
	}
	return out
}

// exposure is how much credited engagement the sends make possible in each hour if reading were even:
// engagements clustered after sends say when mail was sent, not when the recipient reads.
func (bt *burialTable) exposure(sent *week) week {
	var credit [lookaheadHours]float64
	for k := range credit {
		credit[k] = Credit(time.Duration(k)*time.Hour + 30*time.Minute)
	}
	var out week
	for s, n := range sent {
		if n == 0 {
			continue
		}
		for k, left := range bt[s] {
			out[(s+k)%HoursPerWeek] += n * left * credit[k]
		}
	}
	return out
}
