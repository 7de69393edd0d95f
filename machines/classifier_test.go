package machines

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"
)

const chromeUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"

var (
	testSent   = time.Date(2025, time.March, 3, 10, 0, 0, 0, time.UTC)
	personAddr = netip.MustParseAddr("198.51.100.7")
)

// fakeClock is a settable clock for the classifier's window expiry.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func click(id, link string, after time.Duration) Hit {
	return Hit{ID: id, Kind: Click, Method: "GET", IP: personAddr, UserAgent: chromeUA, Link: link,
		At: testSent.Add(after), SentAt: testSent, Visitor: "v1"}
}

func open(id string, after time.Duration) Hit {
	return Hit{ID: id, Kind: Open, Method: "GET", IP: personAddr, UserAgent: chromeUA,
		At: testSent.Add(after), SentAt: testSent, Visitor: "v1"}
}

func honeypot(id string, after time.Duration) Hit {
	h := open(id, after)
	h.Kind = Honeypot
	return h
}

// step is one hit fed to the classifier and what it should return.
type step struct {
	hit      Hit
	want     Label
	relabels []string // ids relabelled by this hit
}

func TestClassifierSequences(t *testing.T) {
	scanner := func(rule string) Label { return Label{true, ReasonScanner, rule} }
	noSent := click("c1", "a", 2*time.Second)
	noSent.SentAt = time.Time{}
	noVisitor := click("c2", "b", time.Hour+500*time.Millisecond)
	noVisitor.Visitor = ""
	otherVisitor := click("c2", "b", time.Hour+500*time.Millisecond)
	otherVisitor.Visitor = "v2"
	tests := []struct {
		name  string
		steps []step
	}{
		{"click at the window edge is a scanner", []step{{hit: click("c1", "a", 10*time.Second), want: scanner(RuleClickAfterSend)}}},
		{"click just after the window is a person", []step{{hit: click("c1", "a", 10*time.Second+time.Millisecond), want: Label{}}}},
		{"click before the send time (clock skew) is a scanner", []step{{hit: click("c1", "a", -time.Second), want: scanner(RuleClickAfterSend)}}},
		{"click as long before the send time as it may be recorded late is a scanner", []step{{hit: click("c1", "a", -30*time.Second), want: scanner(RuleClickAfterSend)}}},
		{"click minutes before the send time: the send time is wrong", []step{{hit: click("c1", "a", -2*time.Minute), want: Label{}}}},
		{"send time unknown", []step{{hit: noSent, want: Label{}}}},
		{"early open is not judged on arrival", []step{{hit: open("o1", time.Second), want: Label{}}}},
		{"two links within the burst window", []step{
			{hit: click("c1", "a", time.Hour), want: Label{}},
			{hit: click("c2", "b", time.Hour+1500*time.Millisecond), want: scanner(RuleClickBurst), relabels: []string{"c1"}},
			{hit: click("c3", "c", time.Hour+2*time.Second), want: scanner(RuleClickBurst)},
		}},
		{"same link twice is no burst", []step{
			{hit: click("c1", "a", time.Hour), want: Label{}},
			{hit: click("c2", "a", time.Hour+300*time.Millisecond), want: Label{}},
		}},
		{"two links further apart than the window", []step{
			{hit: click("c1", "a", time.Hour), want: Label{}},
			{hit: click("c2", "b", time.Hour+2001*time.Millisecond), want: Label{}},
		}},
		{"clicks without link ids count apart", []step{
			{hit: click("c1", "", time.Hour), want: Label{}},
			{hit: click("c2", "", time.Hour+time.Second), want: scanner(RuleClickBurst), relabels: []string{"c1"}},
		}},
		{"repeated link in window counts once", []step{
			{hit: click("c1", "a", time.Hour), want: Label{}},
			{hit: click("c2", "a", time.Hour+100*time.Millisecond), want: Label{}},
			{hit: click("c3", "b", time.Hour+200*time.Millisecond), want: scanner(RuleClickBurst), relabels: []string{"c1", "c2"}},
		}},
		{"no visitor key skips multi-event rules", []step{
			{hit: click("c1", "a", time.Hour), want: Label{}},
			{hit: noVisitor, want: Label{}},
		}},
		{"other visitor is no burst", []step{
			{hit: click("c1", "a", time.Hour), want: Label{}},
			{hit: otherVisitor, want: Label{}},
		}},
		{"honeypot relabels the window", []step{
			{hit: open("o1", time.Hour), want: Label{}},
			{hit: click("c1", "a", time.Hour+time.Minute), want: Label{}},
			{hit: honeypot("h1", time.Hour+2*time.Minute), want: scanner(RuleHoneypot), relabels: []string{"o1", "c1"}},
			{hit: click("c2", "b", time.Hour+5*time.Minute), want: scanner(RuleHoneypotVisitor)},
			{hit: click("c3", "c", time.Hour+12*time.Minute+time.Second), want: Label{}},
		}},
		{"honeypot does not reach past the TTL", []step{
			{hit: open("o1", time.Hour), want: Label{}},
			{hit: honeypot("h1", time.Hour+11*time.Minute), want: scanner(RuleHoneypot)},
		}},
		{"honeypot leaves machine events alone", []step{
			{hit: click("c1", "a", 5*time.Second), want: scanner(RuleClickAfterSend)},
			{hit: honeypot("h1", time.Minute), want: scanner(RuleHoneypot)},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{}
			c := NewClassifier(DefaultRules(), clock.now)
			for i, s := range tt.steps {
				clock.set(s.hit.At)
				got, relabels := c.Label(s.hit)
				if got != s.want {
					t.Fatalf("step %d (%s): got %v, want %v", i, s.hit.ID, got, s.want)
				}
				var ids []string
				for _, rl := range relabels {
					if !rl.Label.Machine {
						t.Fatalf("step %d: relabel %s to a person: %v", i, rl.ID, rl.Label)
					}
					ids = append(ids, rl.ID)
				}
				if fmt.Sprint(ids) != fmt.Sprint(s.relabels) {
					t.Fatalf("step %d: relabels %v, want %v", i, ids, s.relabels)
				}
			}
		})
	}
}

func TestLabelUsesClockWhenHitHasNoTime(t *testing.T) {
	clock := &fakeClock{t: testSent.Add(3 * time.Second)}
	c := NewClassifier(nil, clock.now)
	h := click("c1", "a", 0)
	h.At = time.Time{}
	got, _ := c.Label(h)
	if got.Rule != RuleClickAfterSend {
		t.Fatalf("got %v, want the click judged at the clock's time (3s after sending)", got)
	}
}

func TestPrefetch(t *testing.T) {
	c := NewClassifier(DefaultRules(), nil)
	mpp := open("o1", 5*time.Second)
	mpp.UserAgent = "Mozilla/5.0"
	noSent := open("o1", 5*time.Second)
	noSent.SentAt = time.Time{}
	tests := []struct {
		name  string
		open  Hit
		later []Hit
		want  bool
	}{
		{"early open, nothing after", open("o1", 5*time.Second), nil, true},
		{"at the window edge", open("o1", 15*time.Second), nil, true},
		{"after the window", open("o1", 16*time.Second), nil, false},
		{"a later click", open("o1", 5*time.Second), []Hit{click("c1", "a", 10*time.Minute)}, false},
		{"a later open", open("o1", 5*time.Second), []Hit{open("o2", time.Hour)}, false},
		{"a click in the same millisecond", open("o1", 5*time.Second), []Hit{click("c1", "a", 5*time.Second)}, false},
		{"only earlier activity", open("o1", 5*time.Second), []Hit{open("o0", 2*time.Second)}, true},
		{"send time unknown", noSent, nil, false},
		{"just before the send time", open("o1", -5*time.Second), nil, true},
		{"minutes before the send time: the send time is wrong", open("o1", -10*time.Minute), nil, false},
		{"a static rule already explains it", mpp, nil, false},
		{"not an open", click("c1", "a", 5*time.Second), nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lbl, got := c.Prefetch(tt.open, tt.later)
			if got != tt.want {
				t.Fatalf("Prefetch = %v (%v), want %v", got, lbl, tt.want)
			}
			if got && lbl != (Label{true, ReasonPrefetch, RulePrefetch}) {
				t.Fatalf("label %v", lbl)
			}
		})
	}
}

func TestSetRules(t *testing.T) {
	c := NewClassifier(DefaultRules(), nil)
	c.SetRules(nil)
	if c.Rules() == nil {
		t.Fatal("SetRules(nil) removed the rules")
	}
	r, err := ParseRules([]byte(minimalRules(`[{"name": "test-agent", "reason": "SECURITY_SCANNER", "agent_contains": ["engage-test"]}]`)))
	if err != nil {
		t.Fatalf("ParseRules: %v", err)
	}
	c.SetRules(r)
	h := click("c1", "a", time.Hour)
	h.UserAgent = "engage-test/1"
	if got, _ := c.Label(h); got.Rule != "test-agent" {
		t.Fatalf("after SetRules got %v, want rule test-agent", got)
	}
}

func TestVisitorMemoryIsBounded(t *testing.T) {
	r, err := ParseRules([]byte(minimalRules(`[]`))) // max 100 visitors, 8 events, TTL 10m
	if err != nil {
		t.Fatalf("ParseRules: %v", err)
	}
	tests := []struct {
		name        string
		visitors    int
		perVisitor  int
		gap         time.Duration
		wantMax     int
		wantEvents  int
		lastVisitor string
	}{
		{"cap on visitors", 1000, 1, time.Millisecond, 100, 1, "v999"},
		{"expired visitors are dropped", 50, 1, 11 * time.Minute, 1, 1, "v49"},
		{"cap on events per visitor", 1, 100, time.Second, 1, 8, "v0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{t: testSent}
			c := NewClassifier(r, clock.now)
			at := testSent.Add(time.Hour)
			for v := 0; v < tt.visitors; v++ {
				for e := 0; e < tt.perVisitor; e++ {
					at = at.Add(tt.gap)
					clock.set(at)
					h := open(fmt.Sprintf("o%d-%d", v, e), 0)
					h.At, h.Visitor = at, fmt.Sprintf("v%d", v)
					c.Label(h)
				}
			}
			if got := c.Visitors(); got > tt.wantMax {
				t.Fatalf("%d visitors remembered, want at most %d", got, tt.wantMax)
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			el, ok := c.visitors[tt.lastVisitor]
			if !ok {
				t.Fatalf("most recent visitor %s was dropped", tt.lastVisitor)
			}
			if got := len(el.Value.(*visitor).events); got != tt.wantEvents {
				t.Fatalf("%d events kept, want %d", got, tt.wantEvents)
			}
		})
	}
}

func TestClassifierConcurrentUse(t *testing.T) {
	c := NewClassifier(DefaultRules(), nil)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				h := click(fmt.Sprintf("c%d-%d", g, i), fmt.Sprintf("l%d", i%3), time.Hour+time.Duration(i)*time.Millisecond)
				h.Visitor = fmt.Sprintf("v%d", i%17)
				if i%50 == 0 {
					h.Kind = Honeypot
				}
				if i%100 == 0 {
					c.SetRules(DefaultRules())
				}
				lbl, _ := c.Label(h)
				if lbl.Machine != machineReason(lbl.Reason) {
					t.Errorf("inconsistent label %v", lbl)
					return
				}
			}
		}()
	}
	wg.Wait()
	if c.Visitors() > 17 {
		t.Fatalf("%d visitors, want at most 17", c.Visitors())
	}
}
