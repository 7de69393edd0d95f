package recommend

import (
	"context"
	"strings"
	"time"
)

// histStore is a backend's answers held as data: the histograms a real store would aggregate.
type histStore struct {
	recipients map[string]*Engagement
	domains    map[string]*Engagement
	org        Engagement
	profiles   map[string]Profile
	zones      map[string]*time.Location
	err        error
}

func newHistStore() *histStore {
	return &histStore{recipients: map[string]*Engagement{}, domains: map[string]*Engagement{}, profiles: map[string]Profile{}, zones: map[string]*time.Location{}}
}

func (s *histStore) RecipientEngagement(_ context.Context, _ string, recipients []string) ([]Engagement, error) {
	var out []Engagement
	for _, r := range recipients {
		if e := s.recipients[r]; e != nil {
			out = append(out, *e)
		}
	}
	return out, s.err
}

func (s *histStore) DomainEngagement(_ context.Context, domains []string) (map[string]Engagement, error) {
	out := map[string]Engagement{}
	for _, d := range domains {
		if e := s.domains[d]; e != nil {
			out[d] = *e
		}
	}
	return out, s.err
}

func (s *histStore) OrgEngagement(context.Context) (Engagement, error) { return s.org, s.err }

func (s *histStore) DomainZones(_ context.Context, domains []string) (map[string]*time.Location, error) {
	out := map[string]*time.Location{}
	for _, d := range domains {
		if z := s.zones[d]; z != nil {
			out[d] = z
		}
	}
	return out, s.err
}

func (s *histStore) Profiles(_ context.Context, recipients []string) (map[string]Profile, error) {
	out := map[string]Profile{}
	for _, r := range recipients {
		if p, ok := s.profiles[r]; ok {
			out[r] = p
		}
	}
	return out, s.err
}

// record adds one delivery and, when read is not zero, its first human engagement, the way a backend
// maintains its histograms: UTC and instants for the recipient, local time for the domain and the
// organisation.
func (s *histStore) record(addr string, zone *time.Location, sent, read time.Time) {
	rec := s.recipients[addr]
	if rec == nil {
		rec = &Engagement{Recipient: addr}
		s.recipients[addr] = rec
	}
	d := addr[strings.LastIndexByte(addr, '@')+1:]
	dom := s.domains[d]
	if dom == nil {
		dom = &Engagement{Recipient: d}
		s.domains[d] = dom
	}
	rec.AddDelivery(sent, read)
	dom.AddSend(sent, zone)
	s.org.AddSend(sent, zone)
	if !read.IsZero() {
		dom.AddEngagement(sent, read, zone)
		s.org.AddEngagement(sent, read, zone)
	}
}

// habitually records weeks of weekday mail sent at sendHour and read at readHour, local time.
func (s *histStore) habitually(addr string, zone *time.Location, weeks, sendHour, readHour int) {
	monday := time.Date(2025, time.January, 6, 0, 0, 0, 0, zone)
	for w := range weeks {
		for d := range 5 {
			day := monday.AddDate(0, 0, 7*w+d)
			sent := day.Add(time.Duration(sendHour)*time.Hour + 5*time.Minute)
			read := day.Add(time.Duration(readHour)*time.Hour + 20*time.Minute)
			if !read.After(sent) {
				read = read.AddDate(0, 0, 1)
			}
			s.record(addr, zone, sent, read)
		}
	}
}
