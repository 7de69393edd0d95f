package m365

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/engage-email/engage/auth"
	"github.com/engage-email/engage/consent"
	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/inbound"
	"github.com/engage-email/engage/m365/m365test"
	"github.com/engage-email/engage/store/sqlite"
)

// TestRepliesToMailTheAddinSent: the Outlook add-in puts a followed message's tracked body in the
// Outlook draft and Outlook sends it, so Engage has no delivery job and no record of its ids. The
// sender's Inbox is subscribed all the same, and a reply to it is matched through the sender's Sent
// Items and counted; replies to other mail there are not.
func TestRepliesToMailTheAddinSent(t *testing.T) {
	const ann, other = "ann@fabrikam.com", "other@contoso.com"
	for _, c := range []struct {
		name    string
		owner   string // of the followed message
		tracked bool   // Outlook sent the tracked body, not the salesperson's own text
		unknown bool   // the reply answers mail that is not in Sent Items
		replies int
	}{
		{"a reply to the tracked body counts", rep, true, false, 1},
		{"a reply to untracked mail does not", rep, false, false, 0},
		{"a reply to another owner's followed message does not", other, true, false, 0},
		{"a reply to mail not in Sent Items does not", rep, true, true, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			cl := newCloud(t, nil)
			db := sqlite.OpenTemp(t)
			clk := &clock{now: time.Now().UTC().Truncate(time.Second)}
			keys, err := followed.LoadOrCreateKeyRing(t.TempDir(), "")
			if err != nil {
				t.Fatal(err)
			}
			svc, err := followed.NewService(db, keys, "https://engage.contoso.com", followed.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			// What compose.ts does inside Outlook: followMessage, then the render into the draft.
			m, err := svc.Follow(ctx, auth.Identity{Email: rep}, followed.FollowInput{Subject: "Offer", HTML: "<p>Shall we talk?</p>",
				Recipients: []followed.Recipient{{Email: ann, Kind: followed.KindTo}}, Follow: true})
			if err != nil {
				t.Fatal(err)
			}
			if c.owner != rep {
				// Another salesperson's followed message, whose body reached rep's Sent Items (forwarded).
				m, err = svc.Follow(ctx, auth.Identity{Email: c.owner}, followed.FollowInput{Subject: "Offer", HTML: "<p>Shall we talk?</p>",
					Recipients: []followed.Recipient{{Email: ann, Kind: followed.KindTo}}, Follow: true})
				if err != nil {
					t.Fatal(err)
				}
			}
			body := "<p>Shall we talk?</p>"
			if c.tracked {
				body = m.Renders[0].HTML
			}
			sent := cl.graph.SendFromOutlook(rep, m365test.OutlookMail{To: ann, Subject: "Offer",
				HTML: "<html><head></head><body><div>" + body + "</div></body></html>", SentAt: clk.Now()})

			consents, err := consent.NewService(ctx, db, consent.Options{Log: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			proc := inbound.NewProcessor(db, db, consents, NewInbox(cl.client), inbound.Options{Now: clk.Now})
			proc.SetTokens(svc)
			_, mgr := startHooks(t, cl, db, proc, clk)
			if err := mgr.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			subs, err := db.InboxSubscriptions(ctx)
			if err != nil || !slices.ContainsFunc(subs, func(s inbound.Subscription) bool { return s.Mailbox == rep }) {
				t.Fatalf("subscriptions %+v %v: rep's Inbox is not watched", subs, err)
			}

			inReplyTo := sent.InternetMessageID
			if c.unknown {
				inReplyTo = "<elsewhere@contoso.com>"
			}
			clk.Add(time.Hour)
			id := cl.graph.Deliver(rep, m365test.InboundMail{From: ann, Subject: "Re: Offer", Text: "Yes, let's talk.",
				Headers: map[string]string{"In-Reply-To": inReplyTo}, ConversationID: sent.ConversationID})
			if codes, err := cl.graph.Notify(ctx, rep, id); err != nil || len(codes) != 1 || codes[0] != http.StatusAccepted {
				t.Fatalf("notify: %v %v", codes, err)
			}
			if _, err := proc.Drain(ctx); err != nil {
				t.Fatal(err)
			}
			got, err := db.Message(ctx, m.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Counters.Replies != c.replies {
				t.Fatalf("replies %d, want %d", got.Counters.Replies, c.replies)
			}
			if c.replies == 0 {
				return
			}
			// The send is on record now: a second reply in the thread matches without Sent Items.
			lookups := func() (n int) {
				for _, r := range cl.graph.Requests() {
					if r.Method == http.MethodGet && r.Path == "/users/"+rep+"/mailFolders/sentitems/messages" {
						n++
					}
				}
				return n
			}
			before := lookups()
			clk.Add(time.Hour)
			id = cl.graph.Deliver(rep, m365test.InboundMail{From: ann, Subject: "Re: Offer", Text: "And Thursday?",
				Headers: map[string]string{"In-Reply-To": "<IN000001@fabrikam.com>", "References": sent.InternetMessageID}, ConversationID: sent.ConversationID})
			if _, err := cl.graph.Notify(ctx, rep, id); err != nil {
				t.Fatal(err)
			}
			if _, err := proc.Drain(ctx); err != nil {
				t.Fatal(err)
			}
			if got, err = db.Message(ctx, m.ID); err != nil || got.Counters.Replies != 2 || lookups() != before {
				t.Fatalf("replies %d (%v), Sent Items looked up %d more times; want 2 replies, no lookup", got.Counters.Replies, err, lookups()-before)
			}
		})
	}
}
