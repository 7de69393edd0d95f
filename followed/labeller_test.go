package followed_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/engage-email/engage/auth"
	"github.com/engage-email/engage/delivery"
	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/machines"
	"github.com/engage-email/engage/store/sqlite"
)

const (
	outlookAgent = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17126; Pro)"
	gmailAgent   = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
	chromeAgent  = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
)

// storedMessage stores a followed message created at created with one recipient and two links.
func storedMessage(t *testing.T, db *sqlite.DB, created time.Time) string {
	t.Helper()
	id := followed.NewID(created)
	m := followed.Message{ID: id, Owner: "rep@contoso.com", Subject: "Offer", HTML: "<p>x</p>", Individual: true, Following: true,
		CreatedAt: created.UTC().Truncate(time.Millisecond), Recipients: []followed.Recipient{{Email: "ann@x.com", Kind: followed.KindTo}},
		Renders: []followed.Render{{Index: 0, Recipient: 0, Targets: []int{0}, HTML: "r", Tracked: true}},
		Links:   []followed.Link{{Index: 0, URL: "https://example.com/a"}, {Index: 1, URL: "https://example.com/b"}}}
	if err := db.CreateMessage(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	return id
}

func newLabeller(t *testing.T, db *sqlite.DB) *followed.Labeller {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	l, err := followed.NewLabeller(machines.NewClassifier(nil, nil), db, followed.LabellerOptions{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func label(ev followed.Event) string {
	return fmt.Sprintf("%v/%s/%s %s link %d", ev.Machine, ev.Reason, ev.Rule, ev.Device.Type, ev.Link)
}

// TestLabellerLabels checks the wiring from a tracking hit to the classifier and back to the event:
// kinds, methods, agents, addresses, the send time the message id carries, the honeypot and devices.
func TestLabellerLabels(t *testing.T) {
	db := sqlite.OpenTemp(t)
	devices, err := followed.NewDeviceParser()
	if err != nil {
		t.Fatal(err)
	}
	// NewID keeps ids in order, so an id cannot be made in the past: hits come later instead. Hits on
	// justSent come 2 seconds after it was made, hits on hourOld an hour after.
	justSent, hourOld := followed.NewID(time.Now()), followed.NewID(time.Now())
	atFor := func(id string) time.Time {
		made, ok := followed.IDTime(id)
		switch {
		case !ok:
			return time.Now()
		case id == justSent:
			return made.Add(2 * time.Second)
		}
		return made.Add(time.Hour)
	}
	tests := []struct {
		name              string
		kind              followed.TokenKind
		message           string
		method, ip, agent string
		want              string
	}{
		{"outlook open", followed.TokenOpen, justSent, "GET", "203.0.113.1", outlookAgent, "false// DESKTOP link -1"},
		{"apple privacy proxy agent", followed.TokenOpen, hourOld, "GET", "203.0.113.1", "Mozilla/5.0", "true/APPLE_PRIVACY_PROXY/apple-mpp-agent UNKNOWN link -1"},
		{"apple proxy address", followed.TokenOpen, hourOld, "GET", "17.58.10.1", outlookAgent, "true/APPLE_PRIVACY_PROXY/apple-proxy-range DESKTOP link -1"},
		{"gmail image proxy: a person, device unknown", followed.TokenOpen, justSent, "GET", "66.249.84.1", gmailAgent, "false/PROXIED/gmail-image-proxy UNKNOWN link -1"},
		{"HEAD on a link", followed.TokenClick, hourOld, "HEAD", "203.0.113.1", chromeAgent, "true/SECURITY_SCANNER/head-request DESKTOP link 1"},
		{"click seconds after sending", followed.TokenClick, justSent, "GET", "203.0.113.2", chromeAgent, "true/SECURITY_SCANNER/click-after-send DESKTOP link 1"},
		{"attachment seconds after sending", followed.TokenAttachment, justSent, "GET", "203.0.113.3", chromeAgent, "true/SECURITY_SCANNER/click-after-send DESKTOP link 1"},
		{"click an hour after sending", followed.TokenClick, hourOld, "GET", "203.0.113.4", chromeAgent, "false// DESKTOP link 1"},
		{"safe links address", followed.TokenClick, hourOld, "GET", "40.107.22.5", chromeAgent, "true/SECURITY_SCANNER/microsoft-eop-range DESKTOP link 1"},
		{"honeypot: never a link of the message", followed.TokenHoneypot, hourOld, "GET", "203.0.113.5", chromeAgent, "true/SECURITY_SCANNER/honeypot DESKTOP link -1"},
		{"message id of no time", followed.TokenClick, "m1", "GET", "203.0.113.6", chromeAgent, "false// DESKTOP link 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLabeller(t, db) // a fresh memory per case, so visitors do not meet
			tok := followed.Token{Kind: tt.kind, MessageID: tt.message, Recipient: 0, Link: 1, URL: "https://example.com/b"}
			h := followed.Hit{Token: tok, At: atFor(tt.message), IP: tt.ip, UserAgent: tt.agent, Method: tt.method}
			ev := h.Event(devices)
			l.Settle(context.Background(), l.Label(h, &ev))
			if got := label(ev); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}

// TestLabellerRelabelWaitsForEventsInFlight: a scanner's click and its honeypot hit race; the honeypot
// is stored first, so its relabel of the click waits until the click is stored, then applies.
func TestLabellerRelabelWaitsForEventsInFlight(t *testing.T) {
	ctx := context.Background()
	db := sqlite.OpenTemp(t)
	devices, err := followed.NewDeviceParser()
	if err != nil {
		t.Fatal(err)
	}
	id := storedMessage(t, db, time.Now())
	made, _ := followed.IDTime(id)
	l := newLabeller(t, db)
	hitOf := func(kind followed.TokenKind, link int) (followed.Hit, followed.Event) {
		h := followed.Hit{Token: followed.Token{Kind: kind, MessageID: id, Recipient: 0, Link: link, URL: "https://example.com/a"},
			At: made.Add(time.Hour), IP: "198.51.100.7", UserAgent: chromeAgent, Method: "GET"}
		return h, h.Event(devices)
	}
	ch, click := hitOf(followed.TokenClick, 0)
	clickSettle := l.Label(ch, &click)
	hh, honeypot := hitOf(followed.TokenHoneypot, 0)
	honeySettle := l.Label(hh, &honeypot)
	if click.Machine || !honeypot.Machine {
		t.Fatalf("on arrival: click %s, honeypot %s", label(click), label(honeypot))
	}
	record := func(ev followed.Event) {
		if _, err := db.RecordEvents(ctx, []followed.Event{ev}); err != nil {
			t.Fatal(err)
		}
	}
	record(honeypot)
	l.Settle(ctx, honeySettle) // the click is not stored yet: nothing to relabel in the store
	record(click)
	m, err := db.Message(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if c := m.Counters; c.Clicks != 1 || c.MachineClicks != 1 {
		t.Fatalf("before the click settles: %+v", c)
	}
	l.Settle(ctx, clickSettle)
	m, err = db.Message(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if c := m.Counters; c.Clicks != 0 || c.UniqueClicks != 0 || c.MachineClicks != 2 || m.Links[0].Clicks != 0 {
		t.Fatalf("after the click settles: %+v %+v", c, m.Links)
	}
	evs, err := db.Events(ctx, followed.EventQuery{MessageID: id, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.Reason != string(machines.ReasonScanner) || ev.Rule != machines.RuleHoneypot {
			t.Errorf("event %s (%s): %s", ev.ID, ev.Kind, label(ev))
		}
	}
}

// TestLabellerHoldsRelabelsThroughAnOutage: a scanner clicks a link and then follows the honeypot while
// the store is down, so its click waits in the spool. The honeypot's relabel must not hold its redirect
// on the store, nor be lost: it waits until the spool is replayed, then turns the click into the
// scanner's. With a file for them, it survives a restart before the store is back, as the spooled
// click does.
func TestLabellerHoldsRelabelsThroughAnOutage(t *testing.T) {
	for _, restart := range []bool{false, true} {
		t.Run(map[bool]string{false: "in memory", true: "across a restart"}[restart], func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			in := newIngest(t, 0)
			devices, err := followed.NewDeviceParser()
			if err != nil {
				t.Fatal(err)
			}
			id := storedMessage(t, in.db, time.Now())
			made, _ := followed.IDTime(id)
			rec := followed.NewRecorder(in.db, followed.RecorderOptions{Spool: in.spool(t, nil), CommitTimeout: 100 * time.Millisecond})
			stop := run(rec)
			defer stop()
			backlog := func() bool { st := rec.Stats(); return st.Degraded || st.SpoolPending > 0 }
			opts := followed.LabellerOptions{Backlog: backlog, RetryEvery: 20 * time.Millisecond,
				Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			if restart {
				opts.HeldPath = filepath.Join(t.TempDir(), "relabels.held")
			}
			l, err := followed.NewLabeller(machines.NewClassifier(nil, nil), in.db, opts)
			if err != nil {
				t.Fatal(err)
			}
			if !restart {
				go l.Run(ctx)
			}

			release := in.lock(t)
			hit := func(kind followed.TokenKind, link int) followed.Event {
				h := followed.Hit{Token: followed.Token{Kind: kind, MessageID: id, Recipient: 0, Link: link, URL: "https://example.com/a"},
					At: made.Add(time.Hour), IP: "198.51.100.7", UserAgent: chromeAgent, Method: "GET"}
				ev := h.Event(devices)
				s := l.Label(h, &ev)
				if err := rec.Record(ctx, ev); err != nil {
					t.Fatal(err)
				}
				settled := make(chan struct{})
				go func() { defer close(settled); l.Settle(ctx, s) }()
				select {
				case <-settled:
				case <-time.After(5 * time.Second):
					t.Fatalf("%s hit: Settle still waits on a store that is down", ev.Kind)
				}
				return ev
			}
			if click := hit(followed.TokenClick, 0); click.Machine {
				t.Fatalf("click on arrival: %s", label(click))
			}
			hit(followed.TokenHoneypot, 0)
			if st := rec.Stats(); st.Spooled != 2 {
				t.Fatalf("recorder %+v, want both hits spooled", st)
			}
			if restart {
				// The first labeller never runs again: a new one has only the file to go on.
				l2, err := followed.NewLabeller(machines.NewClassifier(nil, nil), in.db, opts)
				if err != nil {
					t.Fatal(err)
				}
				go l2.Run(ctx)
			}
			release()

			eventually(t, "the click relabelled", func() bool {
				m, err := in.db.Message(ctx, id)
				return err == nil && m.Counters.Clicks == 0 && m.Counters.MachineClicks == 2
			})
			evs, err := in.db.Events(ctx, followed.EventQuery{MessageID: id, Limit: 10})
			if err != nil || len(evs) != 2 {
				t.Fatalf("%d events (err %v), want 2", len(evs), err)
			}
			for _, ev := range evs {
				if ev.Reason != string(machines.ReasonScanner) || ev.Rule != machines.RuleHoneypot {
					t.Errorf("event %s (%s): %s", ev.ID, ev.Kind, label(ev))
				}
			}
			if restart {
				eventually(t, "the held file removed once applied", func() bool {
					_, err := os.Stat(opts.HeldPath)
					return errors.Is(err, os.ErrNotExist)
				})
			}
		})
	}
}

// TestLabellerUsesTheDeliverySendTime: a message created long before it was sent (a scheduled send)
// is judged from its delivery's send time once the cache has it.
func TestLabellerUsesTheDeliverySendTime(t *testing.T) {
	ctx := context.Background()
	db := sqlite.OpenTemp(t)
	devices, err := followed.NewDeviceParser()
	if err != nil {
		t.Fatal(err)
	}
	id := storedMessage(t, db, time.Now())
	made, _ := followed.IDTime(id)
	sent := made.Add(2 * time.Hour) // a scheduled send
	due := sent.Add(-time.Minute)
	if err := db.CreateJob(ctx, delivery.Job{MessageID: id, Owner: "rep@contoso.com", Status: delivery.StatusScheduled,
		ScheduledAt: due, DueAt: due, CreatedAt: due}); err != nil {
		t.Fatal(err)
	}
	js, err := db.ClaimDueJobs(ctx, "w1", due, time.Minute, 1)
	if err != nil || len(js) != 1 {
		t.Fatalf("claim: %v %v", js, err)
	}
	js[0].Status, js[0].SentAt = delivery.StatusSent, sent
	if err := db.FinishJob(ctx, "w1", js[0]); err != nil {
		t.Fatal(err)
	}
	click := func(l *followed.Labeller, ip string) followed.Event {
		h := followed.Hit{Token: followed.Token{Kind: followed.TokenClick, MessageID: id, Link: 0, URL: "https://example.com/a"},
			At: sent.Add(3 * time.Second), IP: ip, UserAgent: chromeAgent, Method: "GET"}
		ev := h.Event(devices)
		l.Settle(ctx, l.Label(h, &ev))
		return ev
	}
	l := newLabeller(t, db)
	if ev := click(l, "203.0.113.1"); ev.Machine {
		t.Fatalf("judged from the creation time, a click two hours on is a person's: %s", label(ev))
	}
	if err := l.Warm(ctx, id); err != nil {
		t.Fatal(err)
	}
	if ev := click(l, "203.0.113.2"); ev.Rule != machines.RuleClickAfterSend {
		t.Fatalf("seconds after the delivery's send: %s, want click-after-send", label(ev))
	}
}

// TestLabellerHearsOfTheSend: delivery tells the labeller as it sends, so a scanner's first click on a
// message created hours before its (scheduled) send is judged from the send, before any cache lookup.
func TestLabellerHearsOfTheSend(t *testing.T) {
	ctx := context.Background()
	db := sqlite.OpenTemp(t)
	devices, err := followed.NewDeviceParser()
	if err != nil {
		t.Fatal(err)
	}
	id := storedMessage(t, db, time.Now().Add(-2*time.Hour))
	l := newLabeller(t, db) // not run: nothing fills its cache from the store
	sends := delivery.New(db, db, delivery.NewOutbox(db, time.Now), delivery.Options{OnSend: l.Sent})
	if j, err := sends.Send(ctx, auth.Identity{Email: "rep@contoso.com"}, id, time.Time{}); err != nil || j.Status != delivery.StatusSent {
		t.Fatalf("send: %+v, %v", j, err)
	}
	h := followed.Hit{Token: followed.Token{Kind: followed.TokenClick, MessageID: id, Link: 0, URL: "https://example.com/a"},
		At: time.Now().Add(3 * time.Second), IP: "203.0.113.1", UserAgent: chromeAgent, Method: "GET"}
	ev := h.Event(devices)
	l.Settle(ctx, l.Label(h, &ev))
	if ev.Rule != machines.RuleClickAfterSend {
		t.Fatalf("a click seconds after the send: %s, want click-after-send", label(ev))
	}
}

// TestPrefetchSweepPages: the sweep reads settled opens a page at a time and judges each once.
func TestPrefetchSweepPages(t *testing.T) {
	ctx := context.Background()
	db := sqlite.OpenTemp(t)
	created := time.Now().Add(-time.Hour)
	var evs []followed.Event
	var ids []string
	for i := range 3 {
		id := storedMessage(t, db, created)
		ids = append(ids, id)
		evs = append(evs, followed.Event{ID: followed.NewID(created), MessageID: id, Kind: followed.Opened,
			At: created.Add(time.Duration(i+1) * time.Second), Recipient: 0, Link: -1, UserAgent: outlookAgent, Method: "GET",
			IP: "203.0.113.9"})
	}
	// A fourth open, 40 seconds after sending, is outside the prefetch window.
	evs = append(evs, followed.Event{ID: followed.NewID(created), MessageID: ids[0], Kind: followed.Opened,
		At: created.Add(40 * time.Second), Recipient: 0, Link: -1, UserAgent: outlookAgent, Method: "GET"})
	if _, err := db.RecordEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	sweep := followed.NewPrefetchSweep(db, machines.NewClassifier(nil, nil), followed.PrefetchOptions{Page: 1,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	// ids[0] has a later open (at 40s), so only the other two were prefetches.
	if n, err := sweep.Sweep(ctx); err != nil || n != 2 {
		t.Fatalf("sweep relabelled %d (err %v), want 2", n, err)
	}
	for i, id := range ids {
		m, err := db.Message(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		want := 1
		if i == 0 {
			want = 0
		}
		if m.Counters.MachineOpens != want {
			t.Errorf("message %d: %d machine opens, want %d", i, m.Counters.MachineOpens, want)
		}
	}
}

func TestIDTime(t *testing.T) {
	at := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Millisecond) // ahead of every id made so far
	tests := []struct {
		name string
		id   string
		want time.Time
		ok   bool
	}{
		{"made by NewID", followed.NewID(at), at, true},
		{"not an id", "m1", time.Time{}, false},
		{"wrong alphabet", "uuuuuuuuuuuuuuuuuuuuuuuuuu", time.Time{}, false},
		{"empty", "", time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := followed.IDTime(tt.id)
			if ok != tt.ok || !got.Equal(tt.want) {
				t.Fatalf("IDTime(%q) = %s, %v; want %s, %v", tt.id, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func FuzzIDTime(f *testing.F) {
	f.Add(followed.NewID(time.Now()))
	f.Add("0000000000000000000000000z")
	f.Add("")
	f.Fuzz(func(t *testing.T, id string) {
		at, ok := followed.IDTime(id)
		if !ok && !at.IsZero() {
			t.Fatalf("IDTime(%q) refused but returned %s", id, at)
		}
		if ok && (len(id) != 26 || at.UnixMilli() < 0) {
			t.Fatalf("IDTime(%q) accepted: %s", id, at)
		}
	})
}

// BenchmarkLabellerLabel is the labelling cost a tracking hit pays: 1,000 messages, 64 clients each
// seen again and again, in parallel as the server runs hits. Settle has nothing to write here.
func BenchmarkLabellerLabel(b *testing.B) {
	db := sqlite.OpenTemp(b)
	l, err := followed.NewLabeller(machines.NewClassifier(nil, nil), db,
		followed.LabellerOptions{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.Run(ctx)
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = followed.NewID(time.Now())
	}
	agents := []string{outlookAgent, chromeAgent, gmailAgent, "Mozilla/5.0"}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			h := followed.Hit{Token: followed.Token{Kind: followed.TokenKind(1 + i%2), MessageID: ids[i%len(ids)], Link: i % 3},
				At: time.Now(), IP: fmt.Sprintf("203.0.113.%d", i%64), UserAgent: agents[i%len(agents)], Method: "GET"}
			ev := followed.Event{ID: followed.NewID(h.At), MessageID: h.Token.MessageID}
			l.Settle(ctx, l.Label(h, &ev))
		}
	})
}
