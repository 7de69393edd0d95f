package storetest

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/engage-email/engage/delivery"
	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/recommend"
)

// failJob records a delivery that gave up on message id at at, after sending render sent at that time
// when sent is 0 or more.
func failJob(t *testing.T, d delivery.Store, id string, sent int, at time.Time) {
	t.Helper()
	ctx := context.Background()
	if err := d.CreateJob(ctx, scheduledJob(id, at)); err != nil {
		t.Fatal(err)
	}
	js, err := d.ClaimDueJobs(ctx, "w1", at, time.Minute, 10)
	if err != nil || len(js) != 1 {
		t.Fatalf("claim %s: %v %v", id, js, err)
	}
	if sent >= 0 {
		if err := d.RecordDraft(ctx, "w1", delivery.RenderSend{MessageID: id, Render: sent, DraftID: "d-" + id}); err != nil {
			t.Fatal(err)
		}
		if err := d.MarkRenderSent(ctx, "w1", id, sent, at); err != nil {
			t.Fatal(err)
		}
	}
	j := js[0]
	j.Status, j.Reason = delivery.StatusFailed, "refused"
	if err := d.FinishJob(ctx, "w1", j); err != nil {
		t.Fatal(err)
	}
}

// runSentOnly checks that histograms and template stats learn from mail that went out, at the time it
// went out: a message without a delivery job (the Outlook add-in sends its own) at its creation, one
// with a job only once delivery sent it or some of its renders.
func runSentOnly(t *testing.T, open func(t *testing.T) Stores) {
	ctx := context.Background()
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	st := open(t)
	if err := st.Recommend.CreateTemplate(ctx, recommend.Template{ID: "tt", Owner: "rep@contoso.com", Name: "tt", HTML: "x",
		Category: "sent-only", CreatedAt: t0, UpdatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	// Every message is created at t0, Monday 09:00 UTC (10:00 in Berlin).
	var ms []followed.Message
	for _, id := range []string{"addin", "scheduled", "failed", "late"} {
		ms = append(ms, message(id, "rep@contoso.com", id, t0, false, "ann@fabrikam.com"))
	}
	ms = append(ms, message("partial", "rep@contoso.com", "partial", t0, true, "ann@fabrikam.com", "zed@fabrikam.com"))
	for i := range ms {
		ms[i].TemplateID = "tt"
	}
	mustCreate(t, st.Followed, ms...)
	late := t0.Add(50 * time.Hour)                             // Wednesday 11:00 UTC, 12:00 in Berlin
	failJob(t, st.Delivery, "failed", -1, t0)                  // refused before anything went out
	failJob(t, st.Delivery, "partial", 0, t0.Add(3*time.Hour)) // ann's render went out at 12:00 UTC
	sendJob(t, st.Delivery, "late", late)
	createJob(t, st, scheduledJob("scheduled", t0.Add(100*time.Hour)))
	if _, err := st.Followed.RecordEvents(ctx, []followed.Event{
		event("o1", "late", followed.Opened, late.Add(10*time.Minute), followed.Shared, -1),
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.Recommend.RecordOutcome(ctx, "rep@contoso.com", "scheduled", recommend.OutcomeWon, t0); err != nil {
		t.Fatal(err)
	}
	if err := st.Recommend.SaveProfile(ctx, recommend.Profile{Recipient: "ann@fabrikam.com", Location: berlin,
		Source: recommend.SourceProfile}, t0); err != nil {
		t.Fatal(err)
	}

	engs, err := st.Recommend.RecipientEngagement(ctx, "rep@contoso.com", []string{"ann@fabrikam.com"})
	if err != nil || len(engs) != 1 {
		t.Fatalf("recipient engagement = %v, %v; want ann's", engs, err)
	}
	doms, err := st.Recommend.DomainEngagement(ctx, []string{"fabrikam.com"})
	if err != nil {
		t.Fatal(err)
	}
	org, err := st.Recommend.OrgEngagement(ctx)
	if err != nil {
		t.Fatal(err)
	}
	credit := recommend.Credit(10 * time.Minute) // timed from the delivery, not from the creation
	tests := []struct {
		name    string
		e       recommend.Engagement
		sent    []int // the add-in's, the partial send's and the late send's hours
		engaged int
	}{
		{"recipient in UTC", engs[0], []int{9, 12, 2*24 + 11}, 2*24 + 11},
		{"domain in Berlin", doms["fabrikam.com"], []int{10, 13, 2*24 + 12}, 2*24 + 12},
		{"organisation in Berlin", org, []int{10, 13, 2*24 + 12}, 2*24 + 12},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sent, engaged := tc.e.Totals()
			if sent != float64(len(tc.sent)) {
				t.Errorf("sent %v, want %d: drafts, scheduled and failed sends do not count", sent, len(tc.sent))
			}
			for _, h := range tc.sent {
				if tc.e.Sent[h] != 1 {
					t.Errorf("sent in hour %d: %v, want 1", h, tc.e.Sent[h])
				}
			}
			if math.Abs(engaged-credit) > 1e-9 || math.Abs(tc.e.Engaged[tc.engaged]-credit) > 1e-9 {
				t.Errorf("engaged %v (hour %d: %v), want %v for an open ten minutes after the send", engaged, tc.engaged,
					tc.e.Engaged[tc.engaged], credit)
			}
		})
	}

	t.Run("template stats", func(t *testing.T) {
		got, err := st.Recommend.TemplateStats(ctx, "sent-only")
		if err != nil {
			t.Fatal(err)
		}
		want := recommend.TemplateStats{ID: "tt", Emails: 3, HumanOpened: 1}
		if len(got) != 1 || got[0] != want {
			t.Errorf("stats = %+v, want %+v: the add-in's, the partial and the late send; not the draft's outcome", got, want)
		}
	})
}
