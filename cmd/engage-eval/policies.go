package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/engage-email/engage/recommend"
)

// zoneFor is the zone a policy may use for a recipient: the stored one, else the sender's.
func (w *world) zoneFor(pi int, r request) *time.Location {
	if p := &w.pop.people[pi]; p.zoneKnown {
		return p.zone
	}
	return w.pop.senders[r.sender]
}

func nextHour(t time.Time) time.Time {
	h := t.Truncate(time.Hour)
	if h.Before(t) {
		h = h.Add(time.Hour)
	}
	return h
}

// dynamicsRule sends at the first whole hour in 8:00-17:00, Monday to Friday, in the first
// recipient's zone: what Dynamics 365 advises.
func (w *world) dynamicsRule() chooser {
	return func(_ context.Context, r request) (time.Time, error) {
		zone := w.zoneFor(r.to[0], r)
		at := nextHour(r.at)
		for range recommend.HoursPerWeek {
			if l := at.In(zone); l.Weekday() != time.Saturday && l.Weekday() != time.Sunday && l.Hour() >= 8 && l.Hour() < 17 {
				return at, nil
			}
			at = at.Add(time.Hour)
		}
		return at, nil
	}
}

// orgBestHour sends at the next weekday occurrence, in the first recipient's zone, of the hour of day
// at which the organisation's recipients engage most (the Dynamics rule until there is data).
func (w *world) orgBestHour(st *memStore) chooser {
	rule := w.dynamicsRule()
	return func(ctx context.Context, r request) (time.Time, error) {
		var byHour [24]float64
		total := 0.0
		for h, v := range st.org.Engaged {
			if h/24 < 5 {
				byHour[h%24] += v
				total += v
			}
		}
		if total == 0 {
			return rule(ctx, r)
		}
		best := 0
		for h := range byHour {
			if byHour[h] > byHour[best] {
				best = h
			}
		}
		zone := w.zoneFor(r.to[0], r)
		at := nextHour(r.at)
		for range recommend.HoursPerWeek {
			if l := at.In(zone); l.Weekday() != time.Saturday && l.Weekday() != time.Sunday && l.Hour() == best {
				return at, nil
			}
			at = at.Add(time.Hour)
		}
		return at, nil
	}
}

// engage asks the real send-time service, reading the simulation's store.
func (w *world) engage(st *memStore, explore float64) (chooser, error) {
	svc, err := recommend.NewSendTimes(st, rand.New(rand.NewPCG(w.seed, 0x73656e64)), explore)
	if err != nil {
		return nil, fmt.Errorf("build send-time service: %w", err)
	}
	return func(ctx context.Context, r request) (time.Time, error) {
		addrs := make([]string, len(r.to))
		for i, pi := range r.to {
			addrs[i] = w.pop.people[pi].addr
		}
		owner := fmt.Sprintf("seller%d@org.example", r.sender)
		slots, err := svc.Recommend(ctx, owner, addrs, r.at, 1, w.pop.senders[r.sender])
		if err != nil {
			return time.Time{}, fmt.Errorf("recommend: %w", err)
		}
		return slots[0].At, nil
	}, nil
}
