package machines

import (
	"container/list"
	"time"
)

// visitor is the remembered recent past of one client; every field is guarded by Classifier.mu.
type visitor struct {
	key          string
	lastSeen     time.Time // by the classifier's clock, for expiry
	flaggedUntil time.Time // followed the honeypot: a scanner until then
	events       []event   // oldest first, at most Rules.maxEvents
}

// event is what the window keeps of one hit.
type event struct {
	id      string
	kind    Kind
	link    string
	at      time.Time
	machine bool
}

// visitor returns the window for key at the classifier's time now, creating it, refreshing its recency, and dropping visitors
// that are expired or beyond the cap. The caller holds c.mu.
func (c *Classifier) visitor(r *Rules, key string, now time.Time) *visitor {
	c.expire(r, now)
	if el, ok := c.visitors[key]; ok {
		v := el.Value.(*visitor)
		v.lastSeen = now
		c.order.MoveToFront(el)
		return v
	}
	v := &visitor{key: key, lastSeen: now}
	c.visitors[key] = c.order.PushFront(v)
	for len(c.visitors) > r.maxVisitors {
		c.remove(c.order.Back())
	}
	return v
}

// expire drops visitors not seen within the TTL, oldest first; the work is paid once per visitor.
func (c *Classifier) expire(r *Rules, now time.Time) {
	for el := c.order.Back(); el != nil; el = c.order.Back() {
		if now.Sub(el.Value.(*visitor).lastSeen) <= r.visitorTTL {
			return
		}
		c.remove(el)
	}
}

func (c *Classifier) remove(el *list.Element) {
	v := c.order.Remove(el).(*visitor)
	delete(c.visitors, v.key)
}

// flagged reports whether the visitor followed the honeypot recently enough to count at t.
func (v *visitor) flagged(t time.Time) bool {
	return !v.flaggedUntil.IsZero() && !t.After(v.flaggedUntil)
}

// add records an event, dropping those older than the TTL and the oldest beyond the cap.
func (v *visitor) add(r *Rules, e event) {
	cut := 0
	for cut < len(v.events) && e.at.Sub(v.events[cut].at) > r.visitorTTL {
		cut++
	}
	if len(v.events)-cut >= r.maxEvents {
		cut = len(v.events) - r.maxEvents + 1
	}
	if cut > 0 {
		n := copy(v.events, v.events[cut:])
		clear(v.events[n:])
		v.events = v.events[:n]
	}
	v.events = append(v.events, e)
}

// distinctLinks counts the distinct links clicked within window of h, h included; a click with
// no link counts as its own.
func (v *visitor) distinctLinks(h *Hit, window time.Duration) int {
	n := 1
	for i := range v.events {
		e := &v.events[i]
		if e.kind != Click || absDuration(h.At.Sub(e.at)) > window {
			continue
		}
		if h.Link != "" && e.link == h.Link {
			continue
		}
		if e.link != "" && v.linkSeenBefore(i, h.At, window) {
			continue
		}
		n++
	}
	return n
}

// linkSeenBefore reports whether an earlier click in the window had the same link as event i.
func (v *visitor) linkSeenBefore(i int, at time.Time, window time.Duration) bool {
	for j := 0; j < i; j++ {
		e := &v.events[j]
		if e.kind == Click && e.link == v.events[i].link && absDuration(at.Sub(e.at)) <= window {
			return true
		}
	}
	return false
}

// relabelClicks marks the human clicks within window of at as lbl and returns those with ids.
func (v *visitor) relabelClicks(at time.Time, window time.Duration, lbl Label) []Relabel {
	var out []Relabel
	for i := range v.events {
		e := &v.events[i]
		if e.kind != Click || e.machine || absDuration(at.Sub(e.at)) > window {
			continue
		}
		e.machine = true
		if e.id != "" {
			out = append(out, Relabel{ID: e.id, Label: lbl})
		}
	}
	return out
}

// relabelAll marks every event since from that is not yet a machine's as lbl.
func (v *visitor) relabelAll(from time.Time, lbl Label) []Relabel {
	var out []Relabel
	for i := range v.events {
		e := &v.events[i]
		if e.machine || e.at.Before(from) {
			continue
		}
		e.machine = true
		if e.id != "" {
			out = append(out, Relabel{ID: e.id, Label: lbl})
		}
	}
	return out
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
