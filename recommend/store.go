package recommend

import (
	"context"
	"fmt"
	"math"
	"time"
)

// HoursPerWeek is the number of hour-of-week buckets, Monday 00:00 being bucket 0.
const HoursPerWeek = 7 * 24

// Engagement holds the hour-of-week histograms the send-time model learns from, so that a backend can
// answer with one indexed aggregate read instead of replaying events.
//
// For a recipient the buckets are in UTC (the recipient's zone may be unknown or change later); for a
// domain or the organisation they are in each member's local time, in the zone on record (members
// without a known zone are left out). Sent counts delivered messages at the hour they went out: one
// with a delivery job only once the job sent it (or some of its renders), one without at its creation,
// as the Outlook add-in sends its own mail and no job records it. Engaged counts messages at the hour of
// their first human engagement (open, click or reply), each weighted by Credit of the delay since the
// send. Machine opens (privacy proxies, image prefetchers, link scanners) are never added.
//
// A recipient's answer also carries each delivery (see AddDelivery): an hour-of-week in UTC cannot be
// moved into a zone that observes daylight saving, nor into one half an hour off UTC, without the
// instant it came from.
type Engagement struct {
	Recipient  string // the address, or the domain, or empty for the organisation
	Sent       [HoursPerWeek]float64
	Engaged    [HoursPerWeek]float64
	Deliveries []Delivery // a recipient's only, in no particular order
}

// Delivery is one followed message to a recipient, kept as instants so the model can place it in the
// recipient's zone with the offset in force when it happened.
type Delivery struct {
	Sent    time.Time // when it went out
	Engaged time.Time // the first human engagement, zero for none
}

// AddDelivery records one of a recipient's deliveries and, when engaged is not zero, its first human
// engagement, as a backend answering RecipientEngagement does: in the UTC histograms and as instants.
func (e *Engagement) AddDelivery(sent, engaged time.Time) {
	e.Deliveries = append(e.Deliveries, Delivery{Sent: sent, Engaged: engaged})
	e.AddSend(sent, time.UTC)
	if !engaged.IsZero() {
		e.AddEngagement(sent, engaged, time.UTC)
	}
}

// AddSend counts a delivery in the hour-of-week of delivered in loc, as a backend does on send.
func (e *Engagement) AddSend(delivered time.Time, loc *time.Location) {
	e.Sent[HourOfWeek(delivered.In(zoneOr(loc)))]++
}

// AddEngagement credits the first human engagement of a message delivered at delivered, in the
// hour-of-week of engaged in loc; engagements soon after delivery count for less (see Credit).
func (e *Engagement) AddEngagement(delivered, engaged time.Time, loc *time.Location) {
	e.Engaged[HourOfWeek(engaged.In(zoneOr(loc)))] += Credit(engaged.Sub(delivered))
}

// Totals returns the summed sends and credited engagements, the evidence the model weighs.
func (e *Engagement) Totals() (sent, engaged float64) {
	for h := range HoursPerWeek {
		sent += e.Sent[h]
		engaged += e.Engaged[h]
	}
	return sent, engaged
}

// Credit is the weight of an engagement that came after delay: an open minutes after delivery mostly
// says when the message was sent, not when the recipient habitually reads, so it counts for less.
func Credit(delay time.Duration) float64 {
	if delay < 0 {
		delay = 0
	}
	return creditFloor + (1-creditFloor)*(1-math.Exp(-delay.Hours()/creditScaleHours))
}

const (
	creditFloor      = 0.25 // an immediate engagement still shows the recipient was at the mailbox
	creditScaleHours = 1.0  // after a few hours an engagement is almost entirely habit
)

// HourOfWeek returns the bucket of t in t's own location, Monday 00:00 being 0.
func HourOfWeek(t time.Time) int {
	day := (int(t.Weekday()) + 6) % 7
	return day*24 + t.Hour()
}

// Where a recipient's time zone came from, best first; explanations name it.
const (
	SourceMailbox  = "mailbox"  // Graph mailbox settings of a colleague
	SourceProfile  = "profile"  // a stored recipient profile
	SourceInferred = "inferred" // guessed from when the recipient engages
	SourceDomain   = "domain"   // where most colleagues at the recipient's domain with a known zone are
	SourceSender   = "sender"   // nothing known: the sender's zone
)

// Profile is what is known about a recipient's time zone, so slots are judged in the recipient's day.
type Profile struct {
	Recipient string
	Location  *time.Location
	Source    string // SourceMailbox or SourceProfile from a store; the model adds the others
}

// Store is what the send-time service needs from a backend. Histograms are maintained as events arrive
// (see Engagement), so every method is an indexed aggregate read. Unknown recipients or domains are
// simply absent from the answers: they are a cold start, not an error.
type Store interface {
	// RecipientEngagement returns the UTC histograms of the recipients' engagement with followed mail,
	// each built with AddDelivery so that it carries its deliveries too; a backend may cover the whole
	// organisation's mail to them (habits do not depend on the sender).
	RecipientEngagement(ctx context.Context, owner string, recipients []string) ([]Engagement, error)
	// DomainEngagement returns local-time histograms keyed by lower-case domain.
	DomainEngagement(ctx context.Context, domains []string) (map[string]Engagement, error)
	// OrgEngagement returns the organisation-wide local-time histogram.
	OrgEngagement(ctx context.Context) (Engagement, error)
	// Profiles returns the known zones (mailbox settings or stored profile) keyed by lower-case address.
	Profiles(ctx context.Context, recipients []string) (map[string]Profile, error)
	// DomainZones returns, keyed by lower-case domain, the zone most of the domain's recipients with a
	// known zone are in; domains with none are absent.
	DomainZones(ctx context.Context, domains []string) (map[string]*time.Location, error)
}

// ProfileSaver keeps a recipient's zone, from Graph mailbox settings or entered by a salesperson.
type ProfileSaver interface {
	SaveProfile(ctx context.Context, p Profile, at time.Time) error
}

// CheckProfile normalises a profile before it is stored: a lower-cased address, a named IANA zone
// that loads, and a source of SourceMailbox or SourceProfile.
func CheckProfile(p Profile) (Profile, error) {
	addrs, err := normalizeRecipients([]string{p.Recipient})
	if err != nil {
		return p, fmt.Errorf("check profile: %w", err)
	}
	p.Recipient = addrs[0]
	if p.Source != SourceMailbox && p.Source != SourceProfile {
		return p, fmt.Errorf("check profile of %s: source %q is neither %s nor %s: %w", p.Recipient, p.Source, SourceMailbox, SourceProfile, ErrBadInput)
	}
	if p.Location == nil || p.Location.String() == "" || p.Location.String() == "Local" {
		return p, fmt.Errorf("check profile of %s: no named time zone: %w", p.Recipient, ErrBadInput)
	}
	if _, err := time.LoadLocation(p.Location.String()); err != nil {
		return p, fmt.Errorf("check profile of %s: zone %q: %w", p.Recipient, p.Location.String(), ErrBadInput)
	}
	return p, nil
}

func zoneOr(loc *time.Location) *time.Location {
	if loc == nil {
		return time.UTC
	}
	return loc
}
