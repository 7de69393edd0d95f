package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/engage-email/engage/followed"
)

var t0 = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

func message(id, owner, subject string, created time.Time, individual bool, emails ...string) followed.Message {
	m := followed.Message{ID: id, Owner: owner, Subject: subject, HTML: "<p>" + subject + "</p>", Individual: individual,
		Following: true, CreatedAt: created, Warnings: []string{}}
	for i, e := range emails {
		m.Recipients = append(m.Recipients, followed.Recipient{Email: e, Name: "R " + e, Kind: followed.KindTo})
		if individual {
			m.Renders = append(m.Renders, followed.Render{Index: i, Recipient: i, Targets: []int{i}, HTML: "r" + e, Tracked: true})
		}
	}
	if !individual {
		all := make([]int, len(emails))
		for i := range all {
			all[i] = i
		}
		m.Renders = []followed.Render{{Index: 0, Recipient: followed.Shared, Targets: all, HTML: "shared", Tracked: true}}
	}
	m.Links = []followed.Link{{Index: 0, URL: "https://example.com/a"}, {Index: 1, URL: "https://example.com/b?x=1&y=ü"}}
	return m
}

func event(id, msg string, kind followed.EventKind, at time.Time, recipient, link int) followed.Event {
	return followed.Event{ID: id, MessageID: msg, Kind: kind, At: at, Recipient: recipient, Link: link,
		IP: "192.0.2.1", UserAgent: "ua", Method: "GET",
		Device: followed.Device{Type: followed.DeviceDesktop, OS: "Windows", Client: "Outlook"}}
}

func mustCreate(t *testing.T, s followed.Store, ms ...followed.Message) {
	t.Helper()
	for _, m := range ms {
		if err := s.CreateMessage(context.Background(), m); err != nil {
			t.Fatalf("create %s: %v", m.ID, err)
		}
	}
}

func runFollowed(t *testing.T, open func(t *testing.T) Stores) {
	ctx := context.Background()

	t.Run("message round trip", func(t *testing.T) {
		s := open(t).Followed
		want := message("m1", "rep@contoso.com", "Hello", t0, true, "a@x.com", "b@y.com")
		want.TemplateID, want.Warnings = "tpl", []string{"link left untracked"}
		mustCreate(t, s, want)
		got, err := s.Message(ctx, "m1")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
		}
		if _, err := s.Message(ctx, "nope"); !errors.Is(err, followed.ErrNotFound) {
			t.Fatalf("missing message: err = %v, want ErrNotFound", err)
		}
		if err := s.CreateMessage(ctx, want); err == nil {
			t.Fatal("creating a message twice succeeded")
		}
	})

	t.Run("listing", func(t *testing.T) {
		s := open(t).Followed
		notFollowing := message("m3", "rep@contoso.com", "Quote for Fabrikam", t0.Add(2*time.Hour), false, "buyer@fabrikam.com")
		notFollowing.Following = false
		mustCreate(t, s,
			message("m1", "rep@contoso.com", "Intro", t0, false, "a@x.com"),
			message("m2", "other@contoso.com", "Intro too", t0.Add(time.Hour), false, "a@x.com"),
			notFollowing,
			message("m4", "rep@contoso.com", "100% off_sale", t0.Add(3*time.Hour), false, "c@z.com"),
		)
		yes, no := true, false
		tests := []struct {
			name string
			q    followed.MessageQuery
			want []string
		}{
			{"owner newest first", followed.MessageQuery{Owner: "rep@contoso.com"}, []string{"m4", "m3", "m1"}},
			{"everyone", followed.MessageQuery{}, []string{"m4", "m3", "m2", "m1"}},
			{"window", followed.MessageQuery{From: t0.Add(time.Hour), To: t0.Add(3 * time.Hour)}, []string{"m3", "m2"}},
			{"following", followed.MessageQuery{Following: &yes}, []string{"m4", "m2", "m1"}},
			{"not following", followed.MessageQuery{Following: &no}, []string{"m3"}},
			{"search subject, any case", followed.MessageQuery{Search: "fabrikam"}, []string{"m3"}},
			{"search recipient", followed.MessageQuery{Search: "c@z"}, []string{"m4"}},
			{"search wildcards are literal", followed.MessageQuery{Search: "0% off_"}, []string{"m4"}},
			{"search % alone matches only a literal %", followed.MessageQuery{Search: "%"}, []string{"m4"}},
			{"after cursor", followed.MessageQuery{After: &followed.Cursor{At: t0.Add(2 * time.Hour), ID: "m3"}}, []string{"m2", "m1"}},
			{"limit", followed.MessageQuery{Limit: 2}, []string{"m4", "m3"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if tt.q.Limit == 0 {
					tt.q.Limit = 10
				}
				ms, err := s.Messages(ctx, tt.q)
				if err != nil {
					t.Fatal(err)
				}
				var ids []string
				for _, m := range ms {
					ids = append(ids, m.ID)
					if m.Renders != nil {
						t.Errorf("listing %s carries renders", m.ID)
					}
					if len(m.Recipients) == 0 || len(m.Links) != 2 {
						t.Errorf("listing %s lacks recipients or links: %+v", m.ID, m)
					}
				}
				if !reflect.DeepEqual(ids, tt.want) {
					t.Fatalf("got %v, want %v", ids, tt.want)
				}
			})
		}
	})

	t.Run("counters on a worked example", func(t *testing.T) {
		s := open(t).Followed
		mustCreate(t, s, message("m", "rep@contoso.com", "Deal", t0, true, "a@x.com", "b@y.com", "c@z.com"))
		machine := event("e9", "m", followed.Opened, t0.Add(time.Second), 2, -1)
		machine.Machine, machine.Reason = true, "APPLE_PRIVACY_PROXY"
		machineClick := event("e10", "m", followed.LinkClicked, t0.Add(2*time.Second), 2, 0)
		machineClick.Machine, machineClick.Reason = true, "SECURITY_SCANNER"
		evs := []followed.Event{
			machine, machineClick,
			event("e1", "m", followed.Opened, t0.Add(10*time.Minute), 0, -1),
			event("e2", "m", followed.Opened, t0.Add(20*time.Minute), 0, -1),
			event("e3", "m", followed.Opened, t0.Add(5*time.Minute), 1, -1),
			event("e4", "m", followed.LinkClicked, t0.Add(11*time.Minute), 0, 0),
			event("e5", "m", followed.LinkClicked, t0.Add(12*time.Minute), 0, 0),
			event("e6", "m", followed.LinkClicked, t0.Add(13*time.Minute), 0, 1),
			event("e7", "m", followed.LinkClicked, t0.Add(14*time.Minute), 1, 1),
			event("e8", "m", followed.AttachmentOpened, t0.Add(15*time.Minute), 1, 0),
			event("e11", "m", followed.Replied, t0.Add(30*time.Minute), 1, -1),
		}
		firsts, err := s.RecordEvents(ctx, evs)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, f := range firsts {
			got = append(got, fmt.Sprintf("%s/%d/%s/%s", f.MessageID, f.Recipient, f.Email, f.Owner))
			if f.Subject != "Deal" || f.Device.Client != "Outlook" {
				t.Errorf("first open lacks subject or device: %+v", f)
			}
		}
		if want := []string{"m/0/a@x.com/rep@contoso.com", "m/1/b@y.com/rep@contoso.com"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("first opens %v, want %v", got, want)
		}
		m, err := s.Message(ctx, "m")
		if err != nil {
			t.Fatal(err)
		}
		want := followed.Counters{Opens: 3, UniqueOpens: 2, FirstOpenedAt: t0.Add(5 * time.Minute),
			LastOpenedAt: t0.Add(20 * time.Minute), Clicks: 4, UniqueClicks: 2, AttachmentOpens: 1, Replies: 1,
			MachineOpens: 1, MachineClicks: 1}
		if m.Counters != want {
			t.Fatalf("counters\n got %+v\nwant %+v", m.Counters, want)
		}
		links := []followed.Link{{Index: 0, URL: "https://example.com/a", Clicks: 2, UniqueClicks: 1},
			{Index: 1, URL: "https://example.com/b?x=1&y=ü", Clicks: 2, UniqueClicks: 2}}
		if !reflect.DeepEqual(m.Links, links) {
			t.Fatalf("links\n got %+v\nwant %+v", m.Links, links)
		}
		if ctr := m.Links[1].ClickThroughRate(m.Counters.UniqueClicks); ctr != 1 {
			t.Errorf("CTR of link 1 = %v, want 1", ctr)
		}
		if ctr := m.Links[0].ClickThroughRate(m.Counters.UniqueClicks); ctr != 0.5 {
			t.Errorf("CTR of link 0 = %v, want 0.5", ctr)
		}

		// A replay of the same events changes nothing and fires nothing.
		again, err := s.RecordEvents(ctx, evs)
		if err != nil || len(again) != 0 {
			t.Fatalf("replay: firsts %v, err %v", again, err)
		}
		m2, _ := s.Message(ctx, "m")
		if m2.Counters != want {
			t.Fatalf("replay moved counters: %+v", m2.Counters)
		}
	})

	// A backend may split a batch into statements of a few fixed sizes; these sizes fall on either side
	// of every boundary SQLite's uses, and a batch spans messages, so a split falls inside them too.
	t.Run("batches of every size count alike", func(t *testing.T) {
		s := open(t).Followed
		for _, n := range []int{1, 2, 31, 32, 33, 41, 47, 63, 65, 97, 129, 200, 201, 233} {
			t.Run(fmt.Sprint(n), func(t *testing.T) {
				msgs := []string{fmt.Sprintf("n%d-a", n), fmt.Sprintf("n%d-b", n), fmt.Sprintf("n%d-c", n)}
				for _, id := range msgs {
					mustCreate(t, s, message(id, "rep@contoso.com", "Batch", t0, true, "a@x.com", "b@y.com", "c@z.com", "d@w.com"))
				}
				type key struct {
					msg             string
					recipient, link int
				}
				want := map[string]*followed.Counters{}
				for _, id := range msgs {
					want[id] = &followed.Counters{}
				}
				opened, clicked, linkClicks, linkFirst := map[key]bool{}, map[key]bool{}, map[key]int{}, map[key]bool{}
				var evs []followed.Event
				for i := range n {
					msg, recipient, at := msgs[i%3], (i/3)%4, t0.Add(time.Duration(i)*time.Second)
					c := want[msg]
					if i%2 == 0 {
						evs = append(evs, event(fmt.Sprintf("n%d-e%03d", n, i), msg, followed.Opened, at, recipient, -1))
						c.Opens++
						if c.FirstOpenedAt.IsZero() {
							c.FirstOpenedAt = at
						}
						c.LastOpenedAt = at
						if k := (key{msg, recipient, -1}); !opened[k] {
							opened[k] = true
							c.UniqueOpens++
						}
						continue
					}
					link := (i / 2) % 2
					evs = append(evs, event(fmt.Sprintf("n%d-e%03d", n, i), msg, followed.LinkClicked, at, recipient, link))
					c.Clicks++
					if k := (key{msg, recipient, -1}); !clicked[k] {
						clicked[k] = true
						c.UniqueClicks++
					}
					linkClicks[key{msg, -1, link}]++
					linkFirst[key{msg, recipient, link}] = true
				}
				firsts, err := s.RecordEvents(ctx, evs)
				if err != nil {
					t.Fatal(err)
				}
				if len(firsts) != len(opened) {
					t.Errorf("%d first opens, want %d", len(firsts), len(opened))
				}
				check := func(when string) {
					t.Helper()
					for _, id := range msgs {
						m, err := s.Message(ctx, id)
						if err != nil {
							t.Fatal(err)
						}
						if m.Counters != *want[id] {
							t.Errorf("%s: %s counters\n got %+v\nwant %+v", when, id, m.Counters, *want[id])
						}
						for _, l := range m.Links {
							unique := 0
							for k := range linkFirst {
								if k.msg == id && k.link == l.Index {
									unique++
								}
							}
							if l.Clicks != linkClicks[key{id, -1, l.Index}] || l.UniqueClicks != unique {
								t.Errorf("%s: %s link %d: %d clicks (%d unique), want %d (%d)", when, id, l.Index, l.Clicks,
									l.UniqueClicks, linkClicks[key{id, -1, l.Index}], unique)
							}
						}
					}
					stored := 0
					for _, id := range msgs {
						page, err := s.Events(ctx, followed.EventQuery{MessageID: id, Limit: 1000})
						if err != nil {
							t.Fatal(err)
						}
						stored += len(page)
					}
					if stored != n {
						t.Errorf("%s: %d events stored, want %d", when, stored, n)
					}
				}
				check("recorded")
				// Replayed whole, every event is found already stored, in whichever statement it falls.
				if again, err := s.RecordEvents(ctx, evs); err != nil || len(again) != 0 {
					t.Fatalf("replay: firsts %v, err %v", again, err)
				}
				check("replayed")
			})
		}
	})

	t.Run("events page newest first", func(t *testing.T) {
		s := open(t).Followed
		mustCreate(t, s, message("m", "rep@contoso.com", "Deal", t0, false, "a@x.com"))
		var evs []followed.Event
		for i := range 5 {
			evs = append(evs, event(fmt.Sprintf("e%d", i), "m", followed.Opened, t0.Add(time.Duration(i%3)*time.Minute), followed.Shared, -1))
		}
		if _, err := s.RecordEvents(ctx, evs); err != nil {
			t.Fatal(err)
		}
		var ids []string
		var after *followed.Cursor
		for range 10 {
			page, err := s.Events(ctx, followed.EventQuery{MessageID: "m", After: after, Limit: 2})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range page {
				ids = append(ids, e.ID)
			}
			if len(page) < 2 {
				break
			}
			last := page[len(page)-1]
			after = &followed.Cursor{At: last.At, ID: last.ID}
		}
		if want := []string{"e2", "e4", "e1", "e3", "e0"}; !reflect.DeepEqual(ids, want) {
			t.Fatalf("paged %v, want %v", ids, want)
		}
		page, _ := s.Events(ctx, followed.EventQuery{MessageID: "m", Limit: 1})
		e := page[0]
		if e.IP != "192.0.2.1" || e.Device.OS != "Windows" || e.Kind != followed.Opened || e.Method != "GET" || e.Link != -1 {
			t.Fatalf("event fields lost: %+v", e)
		}
	})

	t.Run("events of an unknown message are dropped", func(t *testing.T) {
		s := open(t).Followed
		firsts, err := s.RecordEvents(ctx, []followed.Event{event("e1", "gone", followed.Opened, t0, followed.Shared, -1)})
		if err != nil || len(firsts) != 0 {
			t.Fatalf("firsts %v err %v", firsts, err)
		}
	})

	// A replay from the spool can meet events a timed-out commit stored after all, beside new ones
	// and ones whose message was erased meanwhile: only the new count, in every position of a batch.
	t.Run("a batch mixing stored, new and dropped events counts the new alone", func(t *testing.T) {
		s := open(t).Followed
		mustCreate(t, s, message("m", "rep@contoso.com", "Mixed", t0, true, "a@x.com", "b@x.com"))
		at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
		stored := []followed.Event{event("e1", "m", followed.Opened, at(1), 0, -1), event("e2", "m", followed.LinkClicked, at(2), 0, 1)}
		if _, err := s.RecordEvents(ctx, stored); err != nil {
			t.Fatal(err)
		}
		firsts, err := s.RecordEvents(ctx, []followed.Event{stored[1], event("e3", "m", followed.Opened, at(3), 1, -1),
			event("x1", "gone", followed.Opened, at(4), 0, -1), stored[0], event("e4", "m", followed.LinkClicked, at(5), 0, 0),
			event("e5", "m", followed.Opened, at(6), 0, -1)})
		if err != nil {
			t.Fatal(err)
		}
		if len(firsts) != 1 || firsts[0].Recipient != 1 || !firsts[0].At.Equal(at(3)) {
			t.Errorf("first opens %+v, want b's alone, at %v", firsts, at(3))
		}
		m, err := s.Message(ctx, "m")
		if err != nil {
			t.Fatal(err)
		}
		want := followed.Counters{Opens: 3, UniqueOpens: 2, Clicks: 2, UniqueClicks: 1, FirstOpenedAt: at(1), LastOpenedAt: at(6)}
		if m.Counters != want {
			t.Errorf("counters\n got %+v\nwant %+v", m.Counters, want)
		}
		if m.Links[0].Clicks != 1 || m.Links[1].Clicks != 1 {
			t.Errorf("link clicks %d and %d, want 1 each", m.Links[0].Clicks, m.Links[1].Clicks)
		}
		page, err := s.Events(ctx, followed.EventQuery{MessageID: "m", Limit: 100})
		if err != nil || len(page) != 5 {
			t.Fatalf("%d events stored (err %v), want 5", len(page), err)
		}
	})

	t.Run("first open exactly once under concurrency", func(t *testing.T) {
		s := open(t).Followed
		mustCreate(t, s, message("shared", "rep@contoso.com", "One", t0, false, "a@x.com", "b@x.com"),
			message("indiv", "rep@contoso.com", "Two", t0, true, "a@x.com", "b@x.com"))
		const writers, each = 20, 5
		var mu sync.Mutex
		var firsts []followed.FirstOpen
		var wg sync.WaitGroup
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					id := fmt.Sprintf("w%d-%d", w, i)
					got, err := s.RecordEvents(ctx, []followed.Event{
						event(id+"s", "shared", followed.Opened, t0.Add(time.Duration(i)*time.Second), followed.Shared, -1),
						event(id+"i", "indiv", followed.Opened, t0.Add(time.Duration(i)*time.Second), w%2, -1),
					})
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					firsts = append(firsts, got...)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		count := map[string]int{}
		for _, f := range firsts {
			count[fmt.Sprintf("%s/%d", f.MessageID, f.Recipient)]++
		}
		if want := map[string]int{"shared/-1": 1, "indiv/0": 1, "indiv/1": 1}; !reflect.DeepEqual(count, want) {
			t.Fatalf("first opens %v, want %v", count, want)
		}
		m, _ := s.Message(ctx, "shared")
		if m.Counters.Opens != writers*each || m.Counters.UniqueOpens != 1 {
			t.Fatalf("shared counters %+v", m.Counters)
		}
		m, _ = s.Message(ctx, "indiv")
		if m.Counters.Opens != writers*each || m.Counters.UniqueOpens != 2 {
			t.Fatalf("individual counters %+v", m.Counters)
		}
	})

	t.Run("summary", func(t *testing.T) {
		s := open(t).Followed
		notFollowing := message("m5", "rep@contoso.com", "Untracked", t0, false, "a@x.com")
		notFollowing.Following = false
		mustCreate(t, s,
			message("m1", "rep@contoso.com", "A", t0, false, "a@x.com"),
			message("m2", "rep@contoso.com", "B", t0.Add(time.Hour), false, "a@x.com"),
			message("m3", "rep@contoso.com", "C", t0.Add(2*time.Hour), false, "a@x.com"),
			message("m4", "other@contoso.com", "D", t0, false, "a@x.com"),
			notFollowing)
		if _, err := s.RecordEvents(ctx, []followed.Event{
			event("a", "m1", followed.Opened, t0.Add(10*time.Minute), followed.Shared, -1),
			event("b", "m1", followed.Opened, t0.Add(50*time.Minute), followed.Shared, -1),
			event("c", "m2", followed.Opened, t0.Add(time.Hour+30*time.Minute), followed.Shared, -1),
			event("d", "m2", followed.LinkClicked, t0.Add(time.Hour+31*time.Minute), followed.Shared, 0),
			event("e", "m2", followed.Replied, t0.Add(2*time.Hour), followed.Shared, -1),
			event("f", "m4", followed.Opened, t0.Add(time.Minute), followed.Shared, -1),
		}); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name string
			q    followed.SummaryQuery
			want followed.Summary
		}{
			{"owner", followed.SummaryQuery{Owner: "rep@contoso.com"}, followed.Summary{FollowedEmails: 3, OpenedEmails: 2,
				ClickedEmails: 1, RepliedEmails: 1, Opens: 3, Clicks: 1, Replies: 1, MedianTimeToFirstOpen: 20 * time.Minute}},
			{"org", followed.SummaryQuery{}, followed.Summary{FollowedEmails: 4, OpenedEmails: 3,
				ClickedEmails: 1, RepliedEmails: 1, Opens: 4, Clicks: 1, Replies: 1, MedianTimeToFirstOpen: 10 * time.Minute}},
			{"window", followed.SummaryQuery{Owner: "rep@contoso.com", From: t0.Add(time.Hour), To: t0.Add(2 * time.Hour)},
				followed.Summary{FollowedEmails: 1, OpenedEmails: 1, ClickedEmails: 1, RepliedEmails: 1, Opens: 1, Clicks: 1,
					Replies: 1, MedianTimeToFirstOpen: 30 * time.Minute}},
			{"empty", followed.SummaryQuery{Owner: "nobody@contoso.com"}, followed.Summary{}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := s.Summary(ctx, tt.q)
				if err != nil {
					t.Fatal(err)
				}
				if got != tt.want {
					t.Fatalf("got %+v\nwant %+v", got, tt.want)
				}
			})
		}
	})
}
