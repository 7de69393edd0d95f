package machines

import (
	"container/list"
	"sync"
	"sync/atomic"
	"time"
)

// Classifier labels hits as they arrive; it remembers a bounded, expiring window of recent events
// per visitor for the rules that need more than one request (bursts, the honeypot).
// It is safe for concurrent use.
type Classifier struct {
	rules atomic.Pointer[Rules]
	now   func() time.Time

	mu       sync.Mutex
	visitors map[string]*list.Element // of *visitor
	order    *list.List               // most recently seen first
}

// NewClassifier returns a classifier using r (DefaultRules when nil) and now as its clock
// (time.Now when nil).
func NewClassifier(r *Rules, now func() time.Time) *Classifier {
	if r == nil {
		r = DefaultRules()
	}
	if now == nil {
		now = time.Now
	}
	c := &Classifier{now: now, visitors: make(map[string]*list.Element), order: list.New()}
	c.rules.Store(r)
	return c
}

// SetRules swaps the rules for every later call; nil is ignored so a failed load cannot disarm it.
func (c *Classifier) SetRules(r *Rules) {
	if r != nil {
		c.rules.Store(r)
	}
}

// Rules returns the rules in force.
func (c *Classifier) Rules() *Rules { return c.rules.Load() }

// Label labels h and returns any earlier events of the same visitor that h shows to be a machine's.
func (c *Classifier) Label(h Hit) (Label, []Relabel) {
	r := c.rules.Load()
	now := c.now()
	if h.At.IsZero() {
		h.At = now
	}
	if h.Kind == Honeypot {
		return c.honeypot(r, &h, now)
	}
	lbl := r.staticLabel(&h)
	if lbl.Human() && h.Kind == Click && clickedTooSoon(r, &h) {
		lbl = Label{Machine: true, Reason: ReasonScanner, Rule: RuleClickAfterSend}
	}
	if h.Visitor == "" {
		return lbl, nil
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.visitor(r, h.Visitor, now)
	var relabels []Relabel
	switch {
	case !lbl.Machine && v.flagged(h.At):
		lbl = Label{Machine: true, Reason: ReasonScanner, Rule: RuleHoneypotVisitor}
	case !lbl.Machine && h.Kind == Click:
		if v.distinctLinks(&h, r.clickBurst) >= r.clickBurstLinks {
			lbl = Label{Machine: true, Reason: ReasonScanner, Rule: RuleClickBurst}
			relabels = v.relabelClicks(h.At, r.clickBurst, lbl)
		}
	}
	v.add(r, event{id: h.ID, kind: h.Kind, link: h.Link, at: h.At, machine: lbl.Machine})
	return lbl, relabels
}

// honeypot labels a honeypot hit, marks its visitor a scanner and relabels the visitor's window.
func (c *Classifier) honeypot(r *Rules, h *Hit, now time.Time) (Label, []Relabel) {
	lbl := Label{Machine: true, Reason: ReasonScanner, Rule: RuleHoneypot}
	if h.Visitor == "" {
		return lbl, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.visitor(r, h.Visitor, now)
	v.flaggedUntil = h.At.Add(r.visitorTTL)
	relabels := v.relabelAll(h.At.Add(-r.visitorTTL), lbl)
	v.add(r, event{id: h.ID, kind: h.Kind, at: h.At, machine: true})
	return lbl, relabels
}

// sendTimeSlack is how long before its recorded send time a hit may still have followed the send:
// delivery records the time once the mail is out, and a gateway's scanner can be faster than that.
// A hit earlier than this says the send time is wrong (another instance's clock, a send recorded
// late), so the send-time rules do not judge it.
const sendTimeSlack = 30 * time.Second

// sinceSent is how long after its message was sent a hit came, and false when the send time is
// unknown or not to be believed for it.
func sinceSent(h *Hit) (time.Duration, bool) {
	if h.SentAt.IsZero() {
		return 0, false
	}
	d := h.At.Sub(h.SentAt)
	return d, d >= -sendTimeSlack
}

// clickedTooSoon reports whether a click came within the scanning window after sending.
func clickedTooSoon(r *Rules, h *Hit) bool {
	d, ok := sinceSent(h)
	return ok && d <= r.clickAfterSend
}

// Prefetch decides after the fact whether an open was a prefetch: it came within seconds of
// sending, no static rule explains it, and none of later (the recipient's later events that were
// labelled human or PROXIED) followed it. Call it once the recipient has had time to act.
func (c *Classifier) Prefetch(open Hit, later []Hit) (Label, bool) {
	r := c.rules.Load()
	if open.Kind != Open || open.At.IsZero() {
		return Label{}, false
	}
	if d, ok := sinceSent(&open); !ok || d > r.prefetchAfterSend {
		return Label{}, false
	}
	if !r.staticLabel(&open).Human() {
		return Label{}, false
	}
	for i := range later {
		// Later hits are the caller's word, and one in the same millisecond as the open still came after it.
		if !later[i].At.Before(open.At) {
			return Label{}, false
		}
	}
	return Label{Machine: true, Reason: ReasonPrefetch, Rule: RulePrefetch}, true
}

// Visitors returns how many visitors the classifier remembers, for metrics and tests.
func (c *Classifier) Visitors() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.visitors)
}
