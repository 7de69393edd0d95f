package recommend

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// week is one value per hour-of-week bucket.
type week = [HoursPerWeek]float64

// Model constants. The shape of each level is its parent's shape times a per-hour ratio of observed to
// expected engagement; the kappas are the pseudo-engagements an hour needs before its own ratio
// outweighs the parent's shape.
const (
	workStart, workEnd = 8, 17 // the Dynamics rule: 8:00-17:00, Monday to Friday, recipient's zone
	priorFloor         = 0.02  // relative weight of an hour outside working hours in the prior
	orgKappa           = 5.0   // organisation vs working-hours prior
	domainKappa        = 5.0   // domain vs organisation
	dayKappa           = 0.02  // a fraction of one engagement: a recipient's own hours soon outweigh the domain's; recipient's hour-of-day habit (weekdays, weekends; neighbouring hours) vs domain
	weekKappa          = 8.0   // recipient's day-specific habit vs their hour-of-day habit
	minInferEvidence   = 6.0   // credited engagements needed before a zone is inferred
	inferMargin        = 2.0   // log-likelihood an inferred offset must win by over the sender's zone
	ratePriorOrg       = 2.0   // pseudo-sends pulling the org's engagement rate toward one half
	ratePriorDomain    = 10.0  // pseudo-sends pulling a domain's rate toward the org's
	ratePriorRecipient = 5.0   // pseudo-sends pulling a recipient's rate toward the domain's
)

// inWorkingHours reports whether a local hour-of-week falls in the Dynamics working hours.
func inWorkingHours(h int) bool {
	day, hod := h/24, h%24
	return day < 5 && hod >= workStart && hod < workEnd
}

// workingHoursPrior is the shape assumed when nothing is known: mostly working hours.
func workingHoursPrior() week {
	var w week
	for h := range HoursPerWeek {
		w[h] = priorFloor
		if inWorkingHours(h) {
			w[h] = 1
		}
	}
	return normalize(w)
}

func sum(w *week) float64 {
	s := 0.0
	for _, v := range w {
		s += v
	}
	return s
}

func normalize(w week) week {
	s := sum(&w)
	if s <= 0 {
		return w
	}
	for h := range w {
		w[h] /= s
	}
	return w
}

// shifted turns UTC buckets into local buckets for a zone offset of off hours.
func shifted(utc *week, off int) week {
	var out week
	for h, v := range utc {
		out[((h+off)%HoursPerWeek+HoursPerWeek)%HoursPerWeek] = v
	}
	return out
}

// refine is the level's reading shape: the parent's, times each hour's (or, pooled, each hour of day's)
// Gamma-Poisson posterior ratio of credited engagements to what the parent and the sends predict. With
// rnd it draws the ratios from the posterior instead, for Thompson-style exploration.
func refine(parent, engaged, expo *week, kappa float64, pooled bool, rnd *rand.Rand) week {
	var mu week
	for h := range mu {
		mu[h] = parent[h] * expo[h]
	}
	if sum(&mu) <= 0 { // no sends on record: reading as the parent reads
		mu = *parent
	}
	total, m := sum(engaged), sum(&mu)
	var shape week
	if total <= 0 && rnd == nil {
		return *parent
	}
	for h := range mu {
		if m > 0 {
			mu[h] *= total / m
		}
	}
	eng := *engaged
	if pooled {
		eng, mu = poolDays(&eng), poolDays(&mu)
		eng, mu = blurHours(&eng), blurHours(&mu)
	}
	for h := range shape {
		ratio := (eng[h] + kappa) / (mu[h] + kappa)
		if rnd != nil {
			ratio = gamma(rnd, eng[h]+kappa) / (mu[h] + kappa)
		}
		shape[h] = parent[h] * ratio
	}
	return normalize(shape)
}

// poolDays gives every hour the total of the same hour of day over its kind of day (weekdays or the
// weekend): habits repeat across days far more than they differ.
func poolDays(c *week) week {
	var wd, we [24]float64
	for h, v := range c {
		if h/24 < 5 {
			wd[h%24] += v
		} else {
			we[h%24] += v
		}
	}
	var out week
	for h := range out {
		if h/24 < 5 {
			out[h] = wd[h%24]
		} else {
			out[h] = we[h%24]
		}
	}
	return out
}

// blurHours adds to each hour a fifth of each neighbour's value, within the same day: a person who
// reads at 21:00 is likelier than most to read at 20:00 or 22:00 too.
func blurHours(c *week) week {
	var out week
	for h := range out {
		day, hod := h/24, h%24
		out[h] = c[h] + 0.2*(c[day*24+(hod+23)%24]+c[day*24+(hod+1)%24])
	}
	return out
}

func orgLevel(org *Engagement, bt *burialTable) (week, float64) {
	prior := workingHoursPrior()
	expo := bt.exposure(&org.Sent)
	sent, engaged := org.Totals()
	return refine(&prior, &org.Engaged, &expo, orgKappa, false, nil), (engaged + ratePriorOrg*0.5) / (sent + ratePriorOrg)
}

func domainLevel(dom *Engagement, org *week, orgRate float64, bt *burialTable) (week, float64) {
	expo := bt.exposure(&dom.Sent)
	sent, engaged := dom.Totals()
	return refine(org, &dom.Engaged, &expo, domainKappa, false, nil), (engaged + ratePriorDomain*orgRate) / (sent + ratePriorDomain)
}

// habit is one recipient's learned reading shape in their local time.
type habit struct {
	recipient string
	zone      *time.Location
	source    string
	parent    week    // the domain's (or organisation's) shape
	local     week    // credited engagements, local buckets
	expo      week    // exposure of the recipient's sends, local buckets
	shape     week    // posterior mean reading shape
	engaged   float64 // credited engagements
	sent      float64
	rate      float64 // posterior engagement rate, the weight when several recipients share a send
	borrowed  string  // where the prior came from when the recipient has little data
}

func newHabit(e *Engagement, zone *time.Location, source string, parent *week, parentRate float64, bt *burialTable) habit {
	sent, engaged := e.Totals()
	h := habit{recipient: e.Recipient, zone: zone, source: source, parent: *parent, engaged: engaged, sent: sent}
	local := inZone(e, zone)
	h.local = local.Engaged
	h.expo = bt.exposure(&local.Sent)
	h.shape = h.draw(nil)
	h.rate = (engaged + ratePriorRecipient*parentRate) / (sent + ratePriorRecipient)
	return h
}

// inZone buckets a recipient's deliveries in loc, each with the offset in force at its own instant:
// shifting the UTC histogram by today's offset would put a winter habit an hour off in summer.
func inZone(e *Engagement, loc *time.Location) Engagement {
	var out Engagement
	for _, d := range e.Deliveries {
		out.AddSend(d.Sent, loc)
		if !d.Engaged.IsZero() {
			out.AddEngagement(d.Sent, d.Engaged, loc)
		}
	}
	return out
}

// draw refines the parent by the recipient's hour-of-day habit, then by their day-specific one; with
// rnd it samples the posterior instead of taking its mean.
func (h *habit) draw(rnd *rand.Rand) week {
	daily := refine(&h.parent, &h.local, &h.expo, dayKappa, true, rnd)
	return refine(&daily, &h.local, &h.expo, weekKappa, false, rnd)
}

// inferZone guesses the whole-hour fixed offset under which the recipient's engagements are likeliest,
// given the parent's reading shape and when their mail was delivered, if it clearly beats the fallback
// zone taken at each delivery's own offset (a zone off the hour has no whole-hour shift to compare).
func inferZone(e *Engagement, parent *week, fallback *time.Location, bt *burialTable) (*time.Location, bool) {
	if _, engaged := e.Totals(); engaged < minInferEvidence {
		return nil, false
	}
	ll := func(local, sent *week) float64 {
		expo := bt.exposure(sent)
		var mu week
		for h := range mu {
			mu[h] = parent[h] * (expo[h] + 1e-3)
		}
		mu = normalize(mu)
		v := 0.0
		for h, c := range local {
			if c > 0 {
				v += c * math.Log(mu[h])
			}
		}
		return v
	}
	fb := inZone(e, fallback)
	base := ll(&fb.Engaged, &fb.Sent)
	best, bestOff := math.Inf(-1), 0
	for off := -11; off <= 14; off++ {
		local, sent := shifted(&e.Engaged, off), shifted(&e.Sent, off)
		if v := ll(&local, &sent); v > best {
			best, bestOff = v, off
		}
	}
	if best-base <= inferMargin {
		return nil, false
	}
	return time.FixedZone(fmt.Sprintf("UTC%+03d:00", bestOff), bestOff*3600), true
}
