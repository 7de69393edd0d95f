package recommend

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"
)

// patienceHours discounts later slots: a salesperson prefers a good slot tomorrow to a slightly better
// one next week (a day's wait costs about a fifth of the score).
const patienceHours = 96.0

// Slot is one suggested delivery time, best first in a Recommend answer.
type Slot struct {
	At          time.Time // in UTC; the explanation names the recipients' local times
	Score       float64   // expected engagement relative to an average hour of the week (1)
	Explanation string    // one line a salesperson can read
	Exploring   bool      // drawn from a posterior sample rather than the best estimate
}

// SendTimes answers "when should I send this?" from engagement history; safe for concurrent use.
type SendTimes struct {
	store   Store
	explore float64
	burial  *burialTable
	mu      sync.Mutex // guards rnd, which is not safe for concurrent use
	rnd     *rand.Rand
}

// NewSendTimes builds the service; explore is the share of answers (0 to 1) drawn from a posterior
// sample instead of the posterior mean, so the model keeps learning (DefaultExplore is a fair choice).
func NewSendTimes(st Store, rnd *rand.Rand, explore float64) (*SendTimes, error) {
	if st == nil || rnd == nil {
		return nil, fmt.Errorf("new send times: store and random source are required: %w", ErrBadInput)
	}
	if !(explore >= 0 && explore <= 1) {
		return nil, fmt.Errorf("new send times: exploration share %v is outside [0, 1]: %w", explore, ErrBadInput)
	}
	return &SendTimes{store: st, explore: explore, rnd: rnd, burial: newBurialTable()}, nil
}

// maxAhead bounds how far ahead a recommendation may start: slots years away help nobody send mail,
// and near the year 10,000 they are no longer RFC 3339 times. Past starts are allowed back to 2000,
// for looking at what would have been recommended.
const maxAhead = 366 * 24 * time.Hour

// Recommend returns up to count slots after after (0 means DefaultCount), best first, for one message
// to recipients; senderZone stands in for recipients whose zone is unknown (nil means the owner's
// zone on record, else UTC).
func (s *SendTimes) Recommend(ctx context.Context, owner string, recipients []string, after time.Time, count int, senderZone *time.Location) ([]Slot, error) {
	addrs, err := normalizeRecipients(recipients)
	if err != nil {
		return nil, fmt.Errorf("recommend send time: %w", err)
	}
	switch {
	case count == 0:
		count = DefaultCount
	case count < 0 || count > MaxCount:
		return nil, fmt.Errorf("recommend send time: count %d is outside 1-%d: %w", count, MaxCount, ErrBadInput)
	}
	now := time.Now()
	switch {
	case after.IsZero():
		after = now
	case after.Sub(now) > maxAhead:
		return nil, fmt.Errorf("recommend send time: %s is more than a year ahead: %w", after.UTC().Format(time.RFC3339), ErrBadInput)
	case after.Year() < 2000:
		return nil, fmt.Errorf("recommend send time: %s is before the year 2000: %w", after.UTC().Format(time.RFC3339), ErrBadInput)
	}
	lookup := addrs
	if senderZone == nil && owner != "" {
		lookup = append(slices.Clip(addrs), strings.ToLower(owner))
	}
	profiles, err := s.store.Profiles(ctx, lookup)
	if err != nil {
		return nil, fmt.Errorf("recommend send time: read recipient profiles: %w", err)
	}
	if p, ok := profiles[strings.ToLower(owner)]; senderZone == nil && ok && p.Location != nil {
		senderZone = p.Location // a colleague's own mailbox settings
	}
	senderZone = zoneOr(senderZone)
	engs, err := s.store.RecipientEngagement(ctx, owner, addrs)
	if err != nil {
		return nil, fmt.Errorf("recommend send time: read recipient engagement: %w", err)
	}
	domains, err := s.store.DomainEngagement(ctx, domainsOf(addrs))
	if err != nil {
		return nil, fmt.Errorf("recommend send time: read domain engagement: %w", err)
	}
	domainZones, err := s.store.DomainZones(ctx, domainsOf(addrs))
	if err != nil {
		return nil, fmt.Errorf("recommend send time: read domain zones: %w", err)
	}
	org, err := s.store.OrgEngagement(ctx)
	if err != nil {
		return nil, fmt.Errorf("recommend send time: read organisation engagement: %w", err)
	}
	byAddr := make(map[string]*Engagement, len(engs))
	for i := range engs {
		byAddr[strings.ToLower(engs[i].Recipient)] = &engs[i]
	}
	return s.answer(addrs, byAddr, profiles, domains, domainZones, &org, after, count, senderZone), nil
}

// answer is the model proper: pure apart from the exploration draw.
func (s *SendTimes) answer(addrs []string, engs map[string]*Engagement, profiles map[string]Profile,
	domains map[string]Engagement, domainZones map[string]*time.Location, org *Engagement, after time.Time, count int, sender *time.Location) []Slot {
	orgShape, orgRate := orgLevel(org, s.burial)
	_, orgEngaged := org.Totals()
	habits := make([]habit, len(addrs))
	cold := orgEngaged == 0
	for i, a := range addrs {
		e := engs[a]
		if e == nil {
			e = &Engagement{Recipient: a}
		}
		parent, parentRate, borrowed := orgShape, orgRate, ""
		if orgEngaged > 0 {
			borrowed = "your organisation's recipients"
		}
		if d, ok := domains[domainOf(a)]; ok {
			if _, de := d.Totals(); de > 0 {
				parent, parentRate = domainLevel(&d, &orgShape, orgRate, s.burial)
				borrowed, cold = "people at "+domainOf(a), false
			}
		}
		zone, source := sender, SourceSender
		if p, ok := profiles[a]; ok && p.Location != nil {
			zone, source = p.Location, p.Source
		} else if z, ok := inferZone(e, &parent, sender, s.burial); ok {
			zone, source = z, SourceInferred
		} else if z := domainZones[domainOf(a)]; z != nil {
			zone, source = z, SourceDomain
		}
		habits[i] = newHabit(e, zone, source, &parent, parentRate, s.burial)
		habits[i].recipient, habits[i].borrowed = a, borrowed
		if habits[i].engaged > 0 {
			cold = false
		}
	}
	start := hourStart(after, habits[0].zone) // the first recipient's clock; readingHour judges the others
	if cold {
		return workingHoursSlots(habits, start, count)
	}

	exploring := false
	scores := make([]week, len(habits))
	s.mu.Lock()
	if s.explore > 0 && s.rnd.Float64() < s.explore {
		exploring = true
		for i := range habits {
			sample := habits[i].draw(s.rnd)
			scores[i] = s.burial.lookahead(&sample)
		}
	}
	s.mu.Unlock()
	if !exploring {
		for i := range habits {
			scores[i] = s.burial.lookahead(&habits[i].shape)
		}
	}

	type cand struct {
		at    time.Time
		score float64
		rank  float64
	}
	cands := make([]cand, Horizon)
	for i := range cands {
		at := start.Add(time.Duration(i) * time.Hour)
		num, den := 0.0, 0.0
		for r := range habits {
			num += habits[r].rate * scores[r][readingHour(at, habits[r].zone)]
			den += habits[r].rate
		}
		score := num / den
		cands[i] = cand{at: at, score: score, rank: score * math.Exp(-float64(i)/patienceHours)}
	}
	slices.SortStableFunc(cands, func(a, b cand) int { return cmp.Compare(b.rank, a.rank) })
	out := make([]Slot, 0, count)
	for _, c := range cands[:min(count, len(cands))] {
		out = append(out, Slot{
			At: c.at.UTC(), Score: c.score, Exploring: exploring,
			Explanation: explainModel(c.at, habits, scores, exploring),
		})
	}
	return out
}

// hourStart is the first instant at or after t on a whole hour of loc's clock: in a zone half an hour
// off UTC, slots on UTC's hours would fall half past the recipient's.
func hourStart(t time.Time, loc *time.Location) time.Time {
	_, off := t.In(loc).Zone()
	shift := time.Duration(off) * time.Second
	start := t.Add(shift).Truncate(time.Hour).Add(-shift)
	if start.Before(t) {
		start = start.Add(time.Hour)
	}
	return start
}

// readingHour is the local hour-of-week whose readings a delivery at t is in time for: its own when t
// is on loc's hour, else the next, so a slot half past is never credited with a read before it.
func readingHour(t time.Time, loc *time.Location) int {
	l := t.In(loc)
	if l.Minute() != 0 || l.Second() != 0 || l.Nanosecond() != 0 {
		l = l.Add(time.Hour)
	}
	return HourOfWeek(l)
}

// workingHoursSlots is the cold start, the Dynamics rule: the next hours that fall in 8:00-17:00,
// Monday to Friday, for as many recipients as possible in their own zones.
func workingHoursSlots(habits []habit, start time.Time, count int) []Slot {
	type cand struct {
		at  time.Time
		hit int
	}
	cands := make([]cand, 0, Horizon)
	for i := range Horizon {
		at := start.Add(time.Duration(i) * time.Hour)
		hit := 0
		for r := range habits {
			if inWorkingHours(HourOfWeek(at.In(habits[r].zone))) {
				hit++
			}
		}
		if hit > 0 {
			cands = append(cands, cand{at, hit})
		}
	}
	slices.SortStableFunc(cands, func(a, b cand) int { return cmp.Compare(b.hit, a.hit) })
	out := make([]Slot, 0, count)
	for _, c := range cands[:min(count, len(cands))] {
		out = append(out, Slot{
			At: c.at.UTC(), Score: float64(c.hit) / float64(len(habits)),
			Explanation: explainRule(c.at, habits, c.hit),
		})
	}
	return out
}

// normalizeRecipients lower-cases, de-duplicates and checks the addresses.
func normalizeRecipients(recipients []string) ([]string, error) {
	if len(recipients) == 0 {
		return nil, fmt.Errorf("no recipients: %w", ErrBadInput)
	}
	seen := make(map[string]bool, len(recipients))
	out := make([]string, 0, len(recipients))
	for _, r := range recipients {
		a := strings.ToLower(strings.TrimSpace(r))
		at := strings.LastIndexByte(a, '@')
		if at <= 0 || at == len(a)-1 || strings.ContainsAny(a, " \t\r\n<>") {
			return nil, fmt.Errorf("recipient %q is not an email address: %w", r, ErrBadInput)
		}
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	if len(out) > MaxRecipients {
		return nil, fmt.Errorf("%d recipients, at most %d: %w", len(out), MaxRecipients, ErrBadInput)
	}
	return out, nil
}

func domainOf(addr string) string { return addr[strings.LastIndexByte(addr, '@')+1:] }

func domainsOf(addrs []string) []string {
	var out []string
	for _, a := range addrs {
		if d := domainOf(a); !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}
