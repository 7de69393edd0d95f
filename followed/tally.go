package followed

import (
	"strconv"
	"time"
)

// AudienceKey names one fact a recipient can establish only once: a first open, a first click, or
// a first click on one link. Backends store the keys under a unique constraint, so that the database,
// not the caller, decides which event was first.
type AudienceKey struct {
	MessageID string
	Recipient int
	What      string // "open", "click", or "link:<index>"
}

// Audience keys for what a recipient did.
func openKey(ev Event) AudienceKey  { return AudienceKey{ev.MessageID, ev.Recipient, "open"} }
func clickKey(ev Event) AudienceKey { return AudienceKey{ev.MessageID, ev.Recipient, "click"} }
func linkKey(ev Event) AudienceKey {
	return AudienceKey{ev.MessageID, ev.Recipient, "link:" + strconv.Itoa(ev.Link)}
}

// Claims are the audience keys a batch of new events names, each with the event that claims it: the
// first of the batch to name it. Machine events claim nothing, since a machine is nobody's first open.
type Claims struct {
	Keys []AudienceKey         // in the order the batch first names them
	By   map[AudienceKey]Event // the claiming event of each key
}

// ClaimsOf returns what fresh, events not stored before, claim.
func ClaimsOf(fresh []Event) Claims {
	c := Claims{By: map[AudienceKey]Event{}}
	claim := func(k AudienceKey, ev Event) {
		if _, ok := c.By[k]; !ok {
			c.By[k] = ev
			c.Keys = append(c.Keys, k)
		}
	}
	for _, ev := range fresh {
		if ev.Machine {
			continue
		}
		switch ev.Kind {
		case Opened:
			claim(openKey(ev), ev)
		case LinkClicked:
			claim(clickKey(ev), ev)
			claim(linkKey(ev), ev)
		}
	}
	return c
}

// MessageDelta is what one batch adds to a message's counters.
type MessageDelta struct {
	MessageID                                                                                       string
	Opens, UniqueOpens, Clicks, UniqueClicks, AttachmentOpens, Replies, MachineOpens, MachineClicks int
	FirstOpen, LastOpen                                                                             time.Time // zero when the batch has no person's open
}

// LinkDelta is what one batch adds to a link's counters.
type LinkDelta struct {
	MessageID            string
	Link                 int
	Clicks, UniqueClicks int
}

// Tally is what one batch adds to the counters, and which of its events were first opens.
type Tally struct {
	Messages   []MessageDelta // in the order the batch first names each message
	Links      []LinkDelta    // likewise
	FirstOpens []Event        // the events that opened a message for their recipient for the first time
}

// TallyOf counts fresh, events not stored before, given their claims and the keys the store found
// unclaimed by any earlier batch (and so now claimed by this one). Both backends count with it, so the
// counters mean the same whichever store holds them.
func TallyOf(fresh []Event, c Claims, claimed map[AudienceKey]bool) Tally {
	first := func(k AudienceKey, ev Event) bool { return claimed[k] && c.By[k].ID == ev.ID }
	var t Tally
	msgs := map[string]int{}
	links := map[[2]string]int{}
	for _, ev := range fresh {
		i, ok := msgs[ev.MessageID]
		if !ok {
			i = len(t.Messages)
			msgs[ev.MessageID] = i
			t.Messages = append(t.Messages, MessageDelta{MessageID: ev.MessageID})
		}
		d := &t.Messages[i]
		switch ev.Kind {
		case Opened:
			if ev.Machine {
				d.MachineOpens++
				continue
			}
			d.Opens++
			if d.FirstOpen.IsZero() || ev.At.Before(d.FirstOpen) {
				d.FirstOpen = ev.At
			}
			if ev.At.After(d.LastOpen) {
				d.LastOpen = ev.At
			}
			if first(openKey(ev), ev) {
				d.UniqueOpens++
				t.FirstOpens = append(t.FirstOpens, ev)
			}
		case LinkClicked:
			if ev.Machine {
				d.MachineClicks++
				continue
			}
			d.Clicks++
			if first(clickKey(ev), ev) {
				d.UniqueClicks++
			}
			lk := [2]string{ev.MessageID, strconv.Itoa(ev.Link)}
			j, ok := links[lk]
			if !ok {
				j = len(t.Links)
				links[lk] = j
				t.Links = append(t.Links, LinkDelta{MessageID: ev.MessageID, Link: ev.Link})
			}
			t.Links[j].Clicks++
			if first(linkKey(ev), ev) {
				t.Links[j].UniqueClicks++
			}
		case AttachmentOpened:
			if ev.Machine { // a scanner following the file's link: a machine's click, as on any link
				d.MachineClicks++
				continue
			}
			d.AttachmentOpens++
		case Replied:
			d.Replies++
		}
	}
	return t
}
