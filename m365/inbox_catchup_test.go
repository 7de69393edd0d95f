package m365

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/engage-email/engage/m365/m365test"
)

// A catch-up longer than its page limit saves where it stopped, so the next one carries on from there
// instead of reading the same first pages again and never reaching later mail.
func TestInboxCatchUpLongerThanItsPageLimitCarriesOn(t *testing.T) {
	ctx := context.Background()
	r := newInboxRig(t)
	if err := r.mgr.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	r.cloud.graph.SetDeltaPageSize(1) // 150 pages, over the 100 one catch-up reads
	for i := range 150 {
		r.cloud.graph.Deliver(rep, m365test.InboundMail{From: "news@fabrikam.com", Subject: fmt.Sprint("Note ", i)})
	}
	rounds := []struct {
		name   string
		queued int
		link   string // what the saved link resumes with
	}{
		{"first round stops at the page limit", 100, "$skiptoken=100"},
		{"second round carries on and finishes", 50, "$deltatoken=150"},
		{"third round finds nothing new", 0, "$deltatoken=150"},
	}
	for _, round := range rounds {
		t.Run(round.name, func(t *testing.T) {
			before, err := r.db.InboundPending(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.mgr.CatchUp(ctx, rep); err != nil {
				t.Fatal(err)
			}
			after, err := r.db.InboundPending(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if after-before != round.queued {
				t.Errorf("queued %d messages, want %d", after-before, round.queued)
			}
			if link, err := r.db.DeltaLink(ctx, rep); err != nil || !strings.HasSuffix(link, round.link) {
				t.Errorf("saved link %q, %v; want one ending in %q", link, err, round.link)
			}
		})
	}
}

// Graph's default delta page is small, so every page of a catch-up asks for bigger ones.
func TestInboxDeltaAsksForBigPages(t *testing.T) {
	ctx := context.Background()
	r := newInboxRig(t)
	for i := range 3 {
		r.cloud.graph.Deliver(rep, m365test.InboundMail{From: "news@fabrikam.com", Subject: fmt.Sprint("Note ", i)})
	}
	if err := r.mgr.CatchUp(ctx, rep); err != nil {
		t.Fatal(err)
	}
	pages := 0
	for _, req := range r.cloud.graph.Requests() {
		if !strings.HasSuffix(req.Path, "/messages/delta") {
			continue
		}
		pages++
		if want := fmt.Sprint("odata.maxpagesize=", deltaPageSize); req.Prefer != want {
			t.Errorf("delta page %d asked Prefer %q, want %q", pages, req.Prefer, want)
		}
	}
	if pages != 2 {
		t.Fatalf("%d delta pages read, want 2 (the fake serves 2 messages a page)", pages)
	}
}
