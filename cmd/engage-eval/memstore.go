package main

import (
	"context"
	"strings"
	"time"

	"github.com/engage-email/engage/recommend"
)

// memStore is the simulation's own engagement history, kept the way a backend keeps it: histograms
// updated as deliveries and engagements happen, machine-labelled events left out.
type memStore struct {
	recipients map[string]*recommend.Engagement
	domains    map[string]*recommend.Engagement
	org        recommend.Engagement
	profiles   map[string]recommend.Profile
	// domainZones is the most common zone on record among each domain's recipients.
	domainZones map[string]*time.Location
	engaged     map[int64]bool // delivery ids with a first engagement already counted
	deliveries  map[int64]int  // delivery id to its index in the recipient's Deliveries
	// countMachine is the ablation that treats machine opens as people, to show why labels matter.
	countMachine bool
}

func newMemStore(pop *population, countMachine bool) *memStore {
	s := &memStore{
		recipients: map[string]*recommend.Engagement{}, domains: map[string]*recommend.Engagement{},
		profiles: map[string]recommend.Profile{}, engaged: map[int64]bool{}, deliveries: map[int64]int{},
		countMachine: countMachine,
	}
	votes := map[string]map[*time.Location]int{}
	for _, p := range pop.people {
		if p.zoneKnown {
			s.profiles[p.addr] = recommend.Profile{Recipient: p.addr, Location: p.zone, Source: recommend.SourceProfile}
			if votes[p.domain] == nil {
				votes[p.domain] = map[*time.Location]int{}
			}
			votes[p.domain][p.zone]++
		}
	}
	s.domainZones = make(map[string]*time.Location, len(votes))
	for d, v := range votes {
		best, n := (*time.Location)(nil), 0
		for z, c := range v {
			if c > n || (c == n && z.String() < best.String()) {
				best, n = z, c
			}
		}
		s.domainZones[d] = best
	}
	return s
}

func (s *memStore) histograms(p *person) (rec, dom *recommend.Engagement) {
	rec = s.recipients[p.addr]
	if rec == nil {
		rec = &recommend.Engagement{Recipient: p.addr}
		s.recipients[p.addr] = rec
	}
	dom = s.domains[p.domain]
	if dom == nil {
		dom = &recommend.Engagement{Recipient: p.domain}
		s.domains[p.domain] = dom
	}
	return rec, dom
}

// deliver records the send of delivery id.
func (s *memStore) deliver(p *person, id int64, at time.Time) {
	rec, dom := s.histograms(p)
	s.deliveries[id] = len(rec.Deliveries)
	rec.AddDelivery(at, time.Time{})
	if p.zoneKnown {
		dom.AddSend(at, p.zone)
		s.org.AddSend(at, p.zone)
	}
}

// engage records a delivery's first engagement; machine ones are ignored unless countMachine.
func (s *memStore) engage(p *person, id int64, delivered, at time.Time, machine bool) {
	if (machine && !s.countMachine) || s.engaged[id] {
		return
	}
	s.engaged[id] = true
	rec, dom := s.histograms(p)
	if i, ok := s.deliveries[id]; ok {
		rec.Deliveries[i].Engaged = at
	}
	rec.AddEngagement(delivered, at, time.UTC)
	if p.zoneKnown {
		dom.AddEngagement(delivered, at, p.zone)
		s.org.AddEngagement(delivered, at, p.zone)
	}
}

func (s *memStore) RecipientEngagement(_ context.Context, _ string, recipients []string) ([]recommend.Engagement, error) {
	var out []recommend.Engagement
	for _, r := range recipients {
		if e := s.recipients[strings.ToLower(r)]; e != nil {
			out = append(out, *e)
		}
	}
	return out, nil
}

func (s *memStore) DomainEngagement(_ context.Context, domains []string) (map[string]recommend.Engagement, error) {
	out := make(map[string]recommend.Engagement, len(domains))
	for _, d := range domains {
		if e := s.domains[d]; e != nil {
			out[d] = *e
		}
	}
	return out, nil
}

func (s *memStore) OrgEngagement(context.Context) (recommend.Engagement, error) { return s.org, nil }

func (s *memStore) DomainZones(_ context.Context, domains []string) (map[string]*time.Location, error) {
	out := make(map[string]*time.Location, len(domains))
	for _, d := range domains {
		if z := s.domainZones[d]; z != nil {
			out[d] = z
		}
	}
	return out, nil
}

func (s *memStore) Profiles(_ context.Context, recipients []string) (map[string]recommend.Profile, error) {
	out := make(map[string]recommend.Profile, len(recipients))
	for _, r := range recipients {
		if p, ok := s.profiles[r]; ok {
			out[r] = p
		}
	}
	return out, nil
}
