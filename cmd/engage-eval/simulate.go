package main

import (
	"container/heap"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/engage-email/engage/recommend"
)

// epoch is the first simulated Monday; the weeks after it cross both American and European clock changes.
var epoch = time.Date(2025, time.January, 6, 0, 0, 0, 0, time.UTC)

// Inbox mechanics of the simulated recipients, independent of the model under test.
const (
	burialScale   = 15.0 // newer emails above ours that cut the chance of opening it by e
	skipFactor    = 0.6  // each session that passes over an email makes opening it later less likely
	vacationShare = 0.04 // weeks in which a person barely reads
	dayNoise      = 0.35 // log-normal spread of day-to-day reading
	readingWindow = 168  // hours an email can still be opened
	engagedWithin = 72.0 // hours after delivery that count as a timely engagement
	groupShare    = 0.15 // requests that copy colleagues of the same domain
	weeklyEmails  = 1.0  // emails a recipient gets per week on average
	prefetchDelay = 40 * time.Second
)

// request is a salesperson asking when to send one email.
type request struct {
	id     int64
	at     time.Time
	sender int
	to     []int
	week   int
}

// world is a scenario's fixed reality, shared by every policy: sessions, mail load and requests.
type world struct {
	seed     uint64
	weeks    int
	hours    int
	pop      *population
	sessions [][]int8    // per person and absolute hour: the session's minute, or -1
	load     [][]float32 // per person: other mail received before each absolute hour
	requests []request
}

func newWorld(seed uint64, weeks, recipients int) (*world, error) {
	rnd := rand.New(rand.NewPCG(seed, 0x656e67616765))
	pop, err := newPopulation(rnd, recipients)
	if err != nil {
		return nil, fmt.Errorf("build population: %w", err)
	}
	w := &world{seed: seed, weeks: weeks, hours: (weeks + 2) * 168, pop: pop}
	days := (weeks+3)*7 + 2
	for i := range pop.people {
		p := &pop.people[i]
		dayMult := make([]float64, days)
		for d := range dayMult {
			dayMult[d] = math.Exp(dayNoise*rnd.NormFloat64() - dayNoise*dayNoise/2)
			if d%7 == 0 && rnd.Float64() < vacationShare {
				for v := d; v < min(d+7, days); v++ {
					dayMult[v] = 0.1
				}
			}
		}
		sess := make([]int8, w.hours)
		load := make([]float32, w.hours+1)
		for h := range w.hours {
			local := epoch.Add(time.Duration(h) * time.Hour).In(p.zone)
			how := recommend.HourOfWeek(local)
			_, off := local.Zone()
			day := int((local.Unix()+int64(off))/86400-epoch.Unix()/86400) + 1
			sess[h] = -1
			if rnd.Float64() < p.session[how]*dayMult[day] {
				sess[h] = int8(rnd.IntN(60))
			}
			rate := p.mailLoad * 0.1
			if how/24 < 5 && how%24 >= 8 && how%24 < 18 {
				rate = p.mailLoad
			}
			load[h+1] = load[h] + float32(rate)
		}
		w.sessions = append(w.sessions, sess)
		w.load = append(w.load, load)
	}
	w.requests = newRequests(rnd, pop, weeks)
	return w, nil
}

// newRequests draws who writes to whom and when the salesperson asks: their own office hours.
func newRequests(rnd *rand.Rand, pop *population, weeks int) []request {
	byDomain := map[string][]int{}
	for i, p := range pop.people {
		byDomain[p.domain] = append(byDomain[p.domain], i)
	}
	var out []request
	for wk := range weeks {
		monday := epoch.AddDate(0, 0, 7*wk)
		for i, p := range pop.people {
			for range poisson(rnd, weeklyEmails) {
				zone := pop.senders[p.owner]
				at := time.Date(monday.Year(), monday.Month(), monday.Day()+rnd.IntN(5), 9+rnd.IntN(8), rnd.IntN(60), 0, 0, zone)
				to := []int{i}
				if rnd.Float64() < groupShare {
					mates := byDomain[p.domain]
					for range 1 + rnd.IntN(2) {
						if m := mates[rnd.IntN(len(mates))]; !slices.Contains(to, m) {
							to = append(to, m)
						}
					}
				}
				out = append(out, request{at: at.UTC(), sender: p.owner, to: to, week: wk})
			}
		}
	}
	slices.SortStableFunc(out, func(a, b request) int { return a.at.Compare(b.at) })
	for i := range out {
		out[i].id = int64(i)
	}
	return out
}

func poisson(rnd *rand.Rand, mean float64) int {
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= rnd.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// uniform is a common random number: the same delivery at the same hour gets the same draw under
// every policy, so policies differ by their choices, not by luck.
func (w *world) uniform(delivery int64, hour int) float64 {
	x := w.seed ^ uint64(delivery)*0x9e3779b97f4a7c15 ^ uint64(hour)*0xbf58476d1ce4e5b9
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return float64(x>>11) / (1 << 53)
}

// humanOpen plays a delivery forward: each reading session may open it, less likely as newer mail
// buries it and each time it is passed over.
func (w *world) humanOpen(pi int, delivery int64, at time.Time) (time.Time, bool) {
	p := &w.pop.people[pi]
	mins := int(at.Sub(epoch) / time.Minute)
	h0 := mins / 60
	passed := 0
	for h := h0; h < min(h0+readingWindow, w.hours); h++ {
		m := int(w.sessions[pi][h])
		if m < 0 || h*60+m <= mins {
			continue
		}
		buried := float64(w.load[pi][h] - w.load[pi][h0])
		chance := p.attention * math.Exp(-buried/burialScale) * math.Pow(skipFactor, float64(passed))
		if w.uniform(delivery, h) < chance {
			return epoch.Add(time.Duration(h*60+m) * time.Minute), true
		}
		passed++
	}
	return time.Time{}, false
}

// event is something the store learns when its time comes.
type event struct {
	at, delivered time.Time
	person        int
	delivery      int64
	kind          int // deliveredEvent, humanEvent or machineEvent
}

const (
	deliveredEvent = iota
	humanEvent
	machineEvent
)

type queue []event

func (q queue) Len() int { return len(q) }
func (q queue) Less(i, j int) bool {
	return q[i].at.Before(q[j].at) || (q[i].at.Equal(q[j].at) && q[i].kind < q[j].kind)
}
func (q queue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *queue) Push(x any)   { *q = append(*q, x.(event)) }
func (q *queue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// chooser picks a delivery time for a request, no earlier than the request.
type chooser func(ctx context.Context, r request) (time.Time, error)

// outcome is one policy's tally.
type outcome struct {
	deliveries, engaged, engagedWeek int
	lateDeliveries, lateEngaged      int
	waitHours                        float64
}

// run replays every request under one policy, feeding the store only what has happened by then.
func (w *world) run(ctx context.Context, st *memStore, choose chooser) (outcome, error) {
	var res outcome
	q := &queue{}
	for _, r := range w.requests {
		for q.Len() > 0 && !(*q)[0].at.After(r.at) {
			w.apply(st, heap.Pop(q).(event))
		}
		at, err := choose(ctx, r)
		if err != nil {
			return res, fmt.Errorf("choose a time for request %d: %w", r.id, err)
		}
		if at.Before(r.at) {
			at = r.at
		}
		for k, pi := range r.to {
			id := r.id*128 + int64(k)
			heap.Push(q, event{at: at, delivered: at, person: pi, delivery: id, kind: deliveredEvent})
			p := &w.pop.people[pi]
			if p.prefetch || p.scanner {
				heap.Push(q, event{at: at.Add(prefetchDelay), delivered: at, person: pi, delivery: id, kind: machineEvent})
			}
			res.deliveries++
			res.waitHours += at.Sub(r.at).Hours()
			late := r.week >= w.weeks/2
			if late {
				res.lateDeliveries++
			}
			open, ok := w.humanOpen(pi, id, at)
			if !ok {
				continue
			}
			heap.Push(q, event{at: open, delivered: at, person: pi, delivery: id, kind: humanEvent})
			res.engagedWeek++
			if open.Sub(at).Hours() <= engagedWithin {
				res.engaged++
				if late {
					res.lateEngaged++
				}
			}
		}
	}
	return res, nil
}

func (w *world) apply(st *memStore, e event) {
	p := &w.pop.people[e.person]
	switch e.kind {
	case deliveredEvent:
		st.deliver(p, e.delivery, e.at)
	default:
		st.engage(p, e.delivery, e.delivered, e.at, e.kind == machineEvent)
	}
}
