package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// habitKind is a family of reading habits; each person draws their own hours within it.
type habitKind int

const (
	office habitKind = iota
	alwaysOn
	nightOwl
	earlyBird
	weekendReader
	erratic
	kinds
)

var kindNames = [kinds]string{"office hours with personal peaks", "always on in office hours", "night owl",
	"early bird", "weekend reader", "erratic"}

// kindShare is how common each habit is; most people read in working hours in their own zone.
var kindShare = [kinds]float64{0.55, 0.10, 0.12, 0.08, 0.08, 0.07}

// zoneShare is where recipients live; domains are mostly in one place.
var zoneShare = []struct {
	name  string
	share float64
}{
	{"Europe/London", 0.12}, {"Europe/Berlin", 0.15}, {"Europe/Paris", 0.08}, {"America/New_York", 0.20},
	{"America/Chicago", 0.10}, {"America/Los_Angeles", 0.12}, {"America/Sao_Paulo", 0.05},
	{"Asia/Kolkata", 0.05}, {"Asia/Tokyo", 0.05}, {"Australia/Sydney", 0.05}, {"Asia/Singapore", 0.03},
}

// senderZones are the salespeople's zones: the organisation sells from Europe and North America.
var senderZones = []string{"Europe/London", "Europe/London", "Europe/Berlin", "Europe/Berlin", "America/New_York",
	"America/New_York", "America/New_York", "America/Chicago", "America/Los_Angeles", "America/Los_Angeles"}

// person is one simulated recipient with their true, hidden habits.
type person struct {
	addr, domain string
	zone         *time.Location
	zoneKnown    bool // a stored profile tells the store (and Dynamics) the zone
	kind         habitKind
	session      [168]float64 // chance of a reading session in each local hour-of-week
	attention    float64      // chance of opening a followed email at the top of the inbox
	mailLoad     float64      // other emails per working hour, which bury ours
	prefetch     bool         // a privacy proxy fetches images at delivery (machine open)
	scanner      bool         // a link scanner clicks at delivery (machine click)
	owner        int          // the salesperson who writes to them
}

type population struct {
	people  []person
	senders []*time.Location
	kinds   [kinds]int
}

func pick(rnd *rand.Rand, shares []float64) int {
	u, acc := rnd.Float64(), 0.0
	for i, s := range shares {
		if acc += s; u < acc {
			return i
		}
	}
	return len(shares) - 1
}

func newPopulation(rnd *rand.Rand, n int) (*population, error) {
	p := &population{}
	for _, name := range senderZones {
		loc, err := time.LoadLocation(name)
		if err != nil {
			return nil, fmt.Errorf("load sender zone %s: %w", name, err)
		}
		p.senders = append(p.senders, loc)
	}
	zoneShares := make([]float64, len(zoneShare))
	zones := make([]*time.Location, len(zoneShare))
	for i, z := range zoneShare {
		loc, err := time.LoadLocation(z.name)
		if err != nil {
			return nil, fmt.Errorf("load recipient zone %s: %w", z.name, err)
		}
		zones[i], zoneShares[i] = loc, z.share
	}
	domains := max(1, n/10)
	home := make([]int, domains)
	for d := range home {
		home[d] = pick(rnd, zoneShares)
	}
	for i := range n {
		d := rnd.IntN(domains)
		z := home[d]
		if rnd.Float64() < 0.15 {
			z = pick(rnd, zoneShares)
		}
		pr := person{
			addr:      fmt.Sprintf("r%d@d%d.example", i, d),
			domain:    fmt.Sprintf("d%d.example", d),
			zone:      zones[z],
			zoneKnown: rnd.Float64() < 0.35,
			kind:      habitKind(pick(rnd, kindShare[:])),
			attention: 0.35 + 0.6*rnd.Float64(),
			mailLoad:  4 * math.Exp(0.5*rnd.NormFloat64()),
			prefetch:  rnd.Float64() < 0.30,
			scanner:   rnd.Float64() < 0.10,
			owner:     rnd.IntN(len(p.senders)),
		}
		pr.session = sessionRates(rnd, pr.kind)
		p.kinds[pr.kind]++
		p.people = append(p.people, pr)
	}
	return p, nil
}

// sessionRates draws one person's chance of reading mail in each local hour-of-week.
func sessionRates(rnd *rand.Rand, k habitKind) [168]float64 {
	var r [168]float64
	set := func(days []int, from, to int, v float64) {
		for _, d := range days {
			for h := from; h < to; h++ {
				r[d*24+((h%24)+24)%24] = v
			}
		}
	}
	weekdays, weekend, all := []int{0, 1, 2, 3, 4}, []int{5, 6}, []int{0, 1, 2, 3, 4, 5, 6}
	start := 7 + rnd.IntN(4) // start of the working day, 7-10
	end := start + 8 + rnd.IntN(2)
	set(all, 0, 24, 0.005)
	switch k {
	case office:
		set(weekdays, start, end, 0.15+0.1*rnd.Float64())
		set(weekdays, end, 23, 0.04)
		set(weekend, 9, 21, 0.03)
		morning := start + rnd.IntN(2) // the morning check
		set(weekdays, morning, morning+1, 0.8)
		for range 1 + rnd.IntN(2) { // personal peaks later in the day
			h := start + 2 + rnd.IntN(max(1, end-start-2))
			set(weekdays, h, h+1, 0.5+0.3*rnd.Float64())
		}
	case alwaysOn:
		set(weekdays, start, end, 0.6+0.2*rnd.Float64())
		set(weekdays, end, 23, 0.1)
		set(weekend, 9, 21, 0.05)
	case nightOwl:
		set(weekdays, start, end, 0.08)
		peak := 20 + rnd.IntN(3)
		set(all, peak-1, peak+2, 0.3)
		set(all, peak, peak+1, 0.8)
		set(weekend, 10, 18, 0.1)
	case earlyBird:
		peak := 5 + rnd.IntN(3)
		set(weekdays, peak, peak+1, 0.8)
		set(weekdays, peak+1, end, 0.1)
		set(weekend, 7, 10, 0.2)
	case weekendReader:
		set(weekdays, 8, 18, 0.06)
		set(weekdays, 19, 22, 0.1)
		peak := 9 + rnd.IntN(3)
		set(weekend, peak-1, peak+3, 0.3)
		set(weekend, peak, peak+1, 0.7)
	case erratic:
		set(all, 7, 23, 0.06)
	}
	return r
}
