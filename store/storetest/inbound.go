package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/engage-email/engage/delivery"
	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/inbound"
)

func inboundStores(t *testing.T, open func(t *testing.T) Stores) Stores {
	t.Helper()
	st := open(t)
	if st.Inbound == nil {
		t.Skip("backend has no inbound store")
	}
	return st
}

func item(id string, at time.Time) inbound.Item {
	return inbound.Item{ID: id, Kind: inbound.ItemMessage, Mailbox: "rep@contoso.com", GraphID: "g-" + id, EnqueuedAt: at}
}

// sendRender records that render r of message id was sent as internetID in conversation conv.
func sendRender(t *testing.T, s delivery.Store, id string, renders map[int][2]string, at time.Time) {
	t.Helper()
	ctx := context.Background()
	if err := s.CreateJob(ctx, delivery.Job{MessageID: id, Owner: "rep@contoso.com", Status: delivery.StatusScheduled, DueAt: at, CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	js, err := s.ClaimDueJobs(ctx, "w", at, time.Minute, 100)
	if err != nil || len(js) != 1 {
		t.Fatalf("claim %s: %v %v", id, js, err)
	}
	for r, ids := range renders {
		if err := s.RecordDraft(ctx, "w", delivery.RenderSend{MessageID: id, Render: r, DraftID: fmt.Sprint("d", r),
			InternetMessageID: ids[0], ConversationID: ids[1]}); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkRenderSent(ctx, "w", id, r, at); err != nil {
			t.Fatal(err)
		}
	}
	j := js[0]
	j.Status, j.SentAt = delivery.StatusSent, at
	if err := s.FinishJob(ctx, "w", j); err != nil {
		t.Fatal(err)
	}
}

func runInbound(t *testing.T, open func(t *testing.T) Stores) {
	ctx := context.Background()

	t.Run("queue leases, settles and remembers what it processed", func(t *testing.T) {
		s := inboundStores(t, open).Inbound
		a, b := item("a", t0), item("b", t0.Add(time.Second))
		b.Kind, b.GraphID, b.Raw = inbound.ItemRaw, "", []byte("From: x@y.com\r\n\r\nhi")
		if err := s.EnqueueInbound(ctx, []inbound.Item{b, a, a}); err != nil {
			t.Fatal(err)
		}
		if n, err := s.InboundPending(ctx); err != nil || n != 2 {
			t.Fatalf("pending %d %v, want 2 (a queued twice is stored once)", n, err)
		}
		got, err := s.ClaimInbound(ctx, "w1", t0.Add(time.Minute), time.Minute, 10)
		if err != nil || len(got) != 2 || got[0].ID != "a" || got[1].ID != "b" || got[0].Attempts != 1 ||
			string(got[1].Raw) != string(b.Raw) || got[0].GraphID != "g-a" || got[1].Kind != inbound.ItemRaw {
			t.Fatalf("claim: %+v %v", got, err)
		}
		if again, err := s.ClaimInbound(ctx, "w2", t0.Add(90*time.Second), time.Minute, 10); err != nil || len(again) != 0 {
			t.Fatalf("claimed while leased: %+v %v", again, err)
		}
		if err := s.FinishInbound(ctx, "w2", "a"); !errors.Is(err, inbound.ErrLeaseLost) {
			t.Fatalf("finish by a non-holder: %v", err)
		}
		if err := s.FinishInbound(ctx, "w1", "a"); err != nil {
			t.Fatal(err)
		}
		if err := s.RetryInbound(ctx, "w1", "b", t0.Add(time.Hour), "graph down", false); err != nil {
			t.Fatal(err)
		}
		if err := s.EnqueueInbound(ctx, []inbound.Item{item("a", t0.Add(time.Hour))}); err != nil {
			t.Fatal(err)
		}
		if n, _ := s.InboundPending(ctx); n != 1 {
			t.Fatalf("pending %d after a processed item was queued again, want 1", n)
		}
		if got, _ := s.ClaimInbound(ctx, "w1", t0.Add(59*time.Minute), time.Minute, 10); len(got) != 0 {
			t.Fatalf("claimed before its retry time: %+v", got)
		}
		got, err = s.ClaimInbound(ctx, "w2", t0.Add(time.Hour), time.Minute, 10)
		if err != nil || len(got) != 1 || got[0].ID != "b" || got[0].Attempts != 2 || got[0].LastError != "graph down" {
			t.Fatalf("claim after retry time: %+v %v", got, err)
		}
		if err := s.RetryInbound(ctx, "w2", "b", t0.Add(2*time.Hour), "gave up", true); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.ClaimInbound(ctx, "w2", t0.Add(3*time.Hour), time.Minute, 10); len(got) != 0 {
			t.Fatalf("a dead item was claimed: %+v", got)
		}
		if n, err := s.PurgeInbound(ctx, time.Now().Add(time.Hour)); err != nil || n != 1 {
			t.Fatalf("purge: %d %v, want the one done item", n, err)
		}
		if err := s.EnqueueInbound(ctx, []inbound.Item{item("a", t0)}); err != nil {
			t.Fatal(err)
		}
		if n, _ := s.InboundPending(ctx); n != 1 {
			t.Fatalf("pending %d after purge and requeue, want 1", n)
		}
	})

	t.Run("an expired lease is claimed again, and concurrent claimers never share an item", func(t *testing.T) {
		s := inboundStores(t, open).Inbound
		var items []inbound.Item
		for i := range 40 {
			items = append(items, item(fmt.Sprintf("i%02d", i), t0))
		}
		if err := s.EnqueueInbound(ctx, items); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		seen := map[string]string{}
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					got, err := s.ClaimInbound(ctx, fmt.Sprint("w", w), t0, time.Minute, 3)
					if err != nil {
						t.Error(err)
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					for _, it := range got {
						if prev, ok := seen[it.ID]; ok {
							t.Errorf("%s claimed by %s and w%d", it.ID, prev, w)
						}
						seen[it.ID] = fmt.Sprint("w", w)
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(seen) != 40 {
			t.Fatalf("%d items claimed, want 40", len(seen))
		}
		got, err := s.ClaimInbound(ctx, "late", t0.Add(time.Minute), time.Minute, 100)
		if err != nil || len(got) != 40 || got[0].Attempts != 2 {
			t.Fatalf("after the leases ran out: %d items %v", len(got), err)
		}
		if err := s.FinishInbound(ctx, seen[got[0].ID], got[0].ID); !errors.Is(err, inbound.ErrLeaseLost) {
			t.Fatalf("the first holder finished after losing its lease: %v", err)
		}
	})

	t.Run("subscriptions and delta links", func(t *testing.T) {
		s := inboundStores(t, open).Inbound
		if _, err := s.InboxSubscription(ctx, "nope"); !errors.Is(err, followed.ErrNotFound) {
			t.Fatalf("unknown subscription: %v", err)
		}
		sub := inbound.Subscription{ID: "s1", Mailbox: "Rep@Contoso.com", ClientState: "secret", ExpiresAt: t0.Add(72 * time.Hour), CreatedAt: t0}
		if err := s.SaveInboxSubscription(ctx, sub); err != nil {
			t.Fatal(err)
		}
		sub.ExpiresAt = t0.Add(100 * time.Hour)
		if err := s.SaveInboxSubscription(ctx, sub); err != nil {
			t.Fatal(err)
		}
		got, err := s.InboxSubscription(ctx, "s1")
		if err != nil || got.Mailbox != "rep@contoso.com" || got.ClientState != "secret" || !got.ExpiresAt.Equal(sub.ExpiresAt) || !got.CreatedAt.Equal(t0) {
			t.Fatalf("subscription %+v %v", got, err)
		}
		if all, err := s.InboxSubscriptions(ctx); err != nil || len(all) != 1 {
			t.Fatalf("subscriptions %+v %v", all, err)
		}
		if err := s.DeleteInboxSubscription(ctx, "s1"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteInboxSubscription(ctx, "s1"); err != nil {
			t.Fatalf("delete twice: %v", err)
		}
		if all, _ := s.InboxSubscriptions(ctx); len(all) != 0 {
			t.Fatalf("after delete: %+v", all)
		}
		if l, err := s.DeltaLink(ctx, "rep@contoso.com"); err != nil || l != "" {
			t.Fatalf("delta link before any: %q %v", l, err)
		}
		for _, l := range []string{"https://graph/delta?token=1", "https://graph/delta?token=2"} {
			if err := s.SaveDeltaLink(ctx, "REP@contoso.com", l); err != nil {
				t.Fatal(err)
			}
		}
		if l, err := s.DeltaLink(ctx, "rep@contoso.com"); err != nil || l != "https://graph/delta?token=2" {
			t.Fatalf("delta link %q %v", l, err)
		}
	})

	t.Run("replies match the render they answer, and senders are listed", func(t *testing.T) {
		st := inboundStores(t, open)
		s := st.Inbound
		mustCreate(t, st.Followed, message("m1", "rep@contoso.com", "Deal", t0, true, "a@x.com", "b@x.com"))
		sendRender(t, st.Delivery, "m1", map[int][2]string{0: {"<r0@contoso.com>", "conv-1"}, 1: {"<r1@contoso.com>", "conv-1b"}}, t0)
		for _, c := range []struct {
			name string
			ids  []string
			conv string
			want inbound.Match
			err  error
		}{
			{"in-reply-to", []string{"<r1@contoso.com>"}, "", inbound.Match{MessageID: "m1", Render: 1}, nil},
			{"first known id wins", []string{"<other@x>", "<r0@contoso.com>", "<r1@contoso.com>"}, "", inbound.Match{MessageID: "m1", Render: 0}, nil},
			{"conversation", []string{"<other@x>"}, "conv-1b", inbound.Match{MessageID: "m1", Render: 1}, nil},
			{"unknown", []string{"<other@x>"}, "conv-9", inbound.Match{}, followed.ErrNotFound},
			{"nothing to go on", nil, "", inbound.Match{}, followed.ErrNotFound},
		} {
			t.Run(c.name, func(t *testing.T) {
				got, err := s.MatchSend(ctx, c.ids, c.conv)
				if !errors.Is(err, c.err) || (c.err == nil && got != c.want) {
					t.Fatalf("got %+v %v, want %+v %v", got, err, c.want, c.err)
				}
			})
		}
		if ss, err := s.ActiveSenders(ctx, t0.Add(-time.Hour)); err != nil || len(ss) != 1 || ss[0] != "rep@contoso.com" {
			t.Fatalf("active senders: %v %v", ss, err)
		}
		if ss, err := s.ActiveSenders(ctx, t0.Add(time.Hour)); err != nil || len(ss) != 0 {
			t.Fatalf("active senders after the window: %v %v", ss, err)
		}
	})

	t.Run("senders include the Outlook add-in's, whose followed mail has no delivery job", func(t *testing.T) {
		st := inboundStores(t, open)
		mustCreate(t, st.Followed, message("m1", "rep@contoso.com", "Deal", t0, true, "a@x.com"))
		sendRender(t, st.Delivery, "m1", map[int][2]string{0: {"<r0@contoso.com>", "conv-1"}}, t0)
		mustCreate(t, st.Followed, message("m2", "Addin@Contoso.com", "Sent by Outlook", t0, false, "a@x.com"))
		unfollowed := message("m3", "quiet@contoso.com", "Not followed", t0, false, "a@x.com")
		unfollowed.Following, unfollowed.NotFollowedReason = false, "DO_NOT_ALLOW"
		mustCreate(t, st.Followed, unfollowed)
		mustCreate(t, st.Followed, message("m4", "later@contoso.com", "Scheduled", t0, false, "a@x.com"))
		if err := st.Delivery.CreateJob(ctx, delivery.Job{MessageID: "m4", Owner: "later@contoso.com", Status: delivery.StatusScheduled,
			DueAt: t0.Add(48 * time.Hour), CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name  string
			since time.Time
			want  []string
		}{
			{"within the window", t0.Add(-time.Hour), []string{"addin@contoso.com", "rep@contoso.com"}},
			{"after the window", t0.Add(time.Hour), nil},
		} {
			t.Run(c.name, func(t *testing.T) {
				got, err := st.Inbound.ActiveSenders(ctx, c.since)
				if err != nil || fmt.Sprint(got) != fmt.Sprint(c.want) {
					t.Fatalf("active senders %v %v, want %v", got, err, c.want)
				}
			})
		}
	})

	t.Run("the Outlook add-in's sends are recorded once, and only where no delivery job sends", func(t *testing.T) {
		st := inboundStores(t, open)
		s := st.Inbound
		mustCreate(t, st.Followed, message("m1", "rep@contoso.com", "Sent by Engage", t0, false, "a@x.com"),
			message("m2", "rep@contoso.com", "Sent by Outlook", t0, false, "a@x.com"),
			message("m3", "rep@contoso.com", "Scheduled", t0, false, "a@x.com"))
		sendRender(t, st.Delivery, "m1", map[int][2]string{0: {"<r0@contoso.com>", "conv-1"}}, t0)
		if err := st.Delivery.CreateJob(ctx, delivery.Job{MessageID: "m3", Owner: "rep@contoso.com", Status: delivery.StatusScheduled,
			DueAt: t0.Add(48 * time.Hour), CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		outlook := func(id, internetID string) inbound.OutlookSend {
			return inbound.OutlookSend{MessageID: id, InternetMessageID: internetID, ConversationID: "conv-" + internetID, SentAt: t0}
		}
		for _, c := range []struct {
			name  string
			send  inbound.OutlookSend
			match inbound.Match
			err   error
		}{
			{"recorded", outlook("m2", "<o1@contoso.com>"), inbound.Match{MessageID: "m2"}, nil},
			{"a render recorded keeps its ids", outlook("m2", "<o2@contoso.com>"), inbound.Match{}, followed.ErrNotFound},
			{"a message sent by its delivery job keeps its ids", outlook("m1", "<o3@contoso.com>"), inbound.Match{}, followed.ErrNotFound},
			{"a message with a scheduled send is left alone", outlook("m3", "<o4@contoso.com>"), inbound.Match{}, followed.ErrNotFound},
			{"a message that is gone records nothing", outlook("gone", "<o5@contoso.com>"), inbound.Match{}, followed.ErrNotFound},
		} {
			t.Run(c.name, func(t *testing.T) {
				if err := s.RecordOutlookSend(ctx, c.send); err != nil {
					t.Fatal(err)
				}
				for _, m := range []struct{ ids []string }{{[]string{c.send.InternetMessageID}}, {nil}} {
					got, err := s.MatchSend(ctx, m.ids, c.send.ConversationID)
					if !errors.Is(err, c.err) || (c.err == nil && got != c.match) {
						t.Fatalf("match %v: %+v %v, want %+v %v", m.ids, got, err, c.match, c.err)
					}
				}
			})
		}
		rs, err := st.Delivery.RenderSends(ctx, "m2")
		if err != nil || len(rs) != 1 || rs[0].InternetMessageID != "<o1@contoso.com>" || !rs[0].SentAt.Equal(t0) || rs[0].DraftID != "" {
			t.Fatalf("render sends of m2: %+v %v", rs, err)
		}
	})

	t.Run("soft-bounce streaks count each bounce once and end on engagement", func(t *testing.T) {
		st := inboundStores(t, open)
		s := st.Inbound
		mustCreate(t, st.Followed, message("m1", "rep@contoso.com", "Deal", t0, true, "a@x.com"))
		for i, c := range []struct {
			id   string
			want int
		}{{"ev0", 1}, {"ev1", 2}, {"ev1", 2}, {"ev2", 3}} {
			id, want := c.id, c.want
			got, err := s.AddSoftBounce(ctx, "A@x.com", id, t0.Add(time.Duration(i)*time.Hour))
			if err != nil || got != want {
				t.Fatalf("bounce %d (%s): streak %d %v, want %d", i, id, got, err, want)
			}
		}
		// A person opens after the last bounce: the next bounce starts a new streak.
		if _, err := st.Followed.RecordEvents(ctx, []followed.Event{{ID: "open1", MessageID: "m1", Kind: followed.Opened,
			At: t0.Add(4 * time.Hour), Recipient: 0, Link: -1}}); err != nil {
			t.Fatal(err)
		}
		if got, err := s.AddSoftBounce(ctx, "a@x.com", "ev9", t0.Add(5*time.Hour)); err != nil || got != 1 {
			t.Fatalf("after an open: streak %d %v, want 1", got, err)
		}
		if got, _ := s.AddSoftBounce(ctx, "a@x.com", "ev10", t0.Add(6*time.Hour)); got != 2 {
			t.Fatalf("streak %d, want 2", got)
		}
		if err := s.ResetBounceStreak(ctx, "a@x.com"); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.AddSoftBounce(ctx, "a@x.com", "ev11", t0.Add(7*time.Hour)); got != 1 {
			t.Fatalf("after reset: streak %d, want 1", got)
		}
	})
}
