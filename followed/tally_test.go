package followed_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/engage-email/engage/followed"
)

func TestTallyOf(t *testing.T) {
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	ev := func(id, msg string, kind followed.EventKind, rcpt, link int, sec int, machine bool) followed.Event {
		return followed.Event{ID: id, MessageID: msg, Kind: kind, Recipient: rcpt, Link: link, At: t0.Add(time.Duration(sec) * time.Second), Machine: machine}
	}
	open := func(id, msg string, rcpt, sec int) followed.Event {
		return ev(id, msg, followed.Opened, rcpt, -1, sec, false)
	}
	click := func(id, msg string, rcpt, link, sec int) followed.Event {
		return ev(id, msg, followed.LinkClicked, rcpt, link, sec, false)
	}
	at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }
	for _, c := range []struct {
		name       string
		fresh      []followed.Event
		earlier    []followed.AudienceKey // claimed by an earlier batch
		wantKeys   []followed.AudienceKey
		wantTally  followed.Tally
		firstOpens []string
	}{{
		name:     "the first open of each recipient claims, the second does not",
		fresh:    []followed.Event{open("a", "m", 0, 5), open("b", "m", 0, 3), open("c", "m", 1, 9)},
		wantKeys: []followed.AudienceKey{{"m", 0, "open"}, {"m", 1, "open"}},
		wantTally: followed.Tally{Messages: []followed.MessageDelta{{MessageID: "m", Opens: 3, UniqueOpens: 2,
			FirstOpen: at(3), LastOpen: at(9)}}},
		firstOpens: []string{"a", "c"},
	}, {
		name:     "a recipient who opened in an earlier batch is not a first open again",
		fresh:    []followed.Event{open("a", "m", 0, 1)},
		earlier:  []followed.AudienceKey{{"m", 0, "open"}},
		wantKeys: []followed.AudienceKey{{"m", 0, "open"}},
		wantTally: followed.Tally{Messages: []followed.MessageDelta{{MessageID: "m", Opens: 1,
			FirstOpen: at(1), LastOpen: at(1)}}},
	}, {
		name:      "machines claim nothing and count apart",
		fresh:     []followed.Event{ev("a", "m", followed.Opened, 0, -1, 1, true), ev("b", "m", followed.LinkClicked, 0, 0, 2, true)},
		wantTally: followed.Tally{Messages: []followed.MessageDelta{{MessageID: "m", MachineOpens: 1, MachineClicks: 1}}},
	}, {
		name:  "clicks count per message and per link, uniquely per recipient",
		fresh: []followed.Event{click("a", "m", 0, 0, 1), click("b", "m", 0, 1, 2), click("c", "m", 0, 0, 3), click("d", "n", 2, 0, 4)},
		wantKeys: []followed.AudienceKey{{"m", 0, "click"}, {"m", 0, "link:0"}, {"m", 0, "link:1"},
			{"n", 2, "click"}, {"n", 2, "link:0"}},
		wantTally: followed.Tally{
			Messages: []followed.MessageDelta{{MessageID: "m", Clicks: 3, UniqueClicks: 1}, {MessageID: "n", Clicks: 1, UniqueClicks: 1}},
			Links: []followed.LinkDelta{{MessageID: "m", Link: 0, Clicks: 2, UniqueClicks: 1},
				{MessageID: "m", Link: 1, Clicks: 1, UniqueClicks: 1}, {MessageID: "n", Link: 0, Clicks: 1, UniqueClicks: 1}},
		},
	}, {
		name: "attachments by people and replies count; a machine's attachment open is a machine's click",
		fresh: []followed.Event{ev("a", "m", followed.AttachmentOpened, 0, 0, 1, false), ev("b", "m", followed.AttachmentOpened, 0, 0, 1, true),
			ev("c", "m", followed.Replied, 0, -1, 2, false)},
		wantTally: followed.Tally{Messages: []followed.MessageDelta{{MessageID: "m", AttachmentOpens: 1, Replies: 1, MachineClicks: 1}}},
	}, {
		name: "nothing fresh adds nothing",
	}} {
		t.Run(c.name, func(t *testing.T) {
			claims := followed.ClaimsOf(c.fresh)
			if !reflect.DeepEqual(claims.Keys, c.wantKeys) {
				t.Fatalf("keys %v, want %v", claims.Keys, c.wantKeys)
			}
			claimed := map[followed.AudienceKey]bool{}
			old := map[followed.AudienceKey]bool{}
			for _, k := range c.earlier {
				old[k] = true
			}
			for _, k := range claims.Keys {
				claimed[k] = !old[k]
			}
			got := followed.TallyOf(c.fresh, claims, claimed)
			var firsts []string
			for _, e := range got.FirstOpens {
				firsts = append(firsts, e.ID)
			}
			if !reflect.DeepEqual(firsts, c.firstOpens) {
				t.Errorf("first opens %v, want %v", firsts, c.firstOpens)
			}
			got.FirstOpens = nil
			if !reflect.DeepEqual(got, c.wantTally) {
				t.Errorf("tally\n got %+v\nwant %+v", got, c.wantTally)
			}
		})
	}
}
