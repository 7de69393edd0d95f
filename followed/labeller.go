package followed

import (
	"context"
	"hash/maphash"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru"

	"github.com/engage-email/engage/machines"
)

// LabellerOptions tune the send-time cache.
type LabellerOptions struct {
	CacheSize int // messages whose send time is remembered; default 20,000
	// RecheckAfter is how long "delivery recorded no send time" is believed before the store is asked
	// again (the send may be recorded just after the first hits); default 30s.
	RecheckAfter time.Duration
	// Backlog says whether tracking events wait to be stored, in the recorder's spool while the store
	// is down or behind. Relabels wait for it to clear, since a relabel reaches only stored events;
	// nil means events are always stored by the time their hit is answered.
	Backlog func() bool
	// RetryEvery is how often relabels that wait, for the backlog or for a failing store, are tried
	// again; default 2s.
	RetryEvery time.Duration
	// HeldPath, when set, is a file that keeps the relabels that wait, so that they survive a restart
	// as the spooled events they name do; empty keeps them in memory only.
	HeldPath string
	Log      *slog.Logger
}

// maxHeld bounds the relabels that wait; past it the oldest are dropped, and the log says how many.
const maxHeld = 100_000

// heldStep bounds the relabels one retry sends to the store at once.
const heldStep = 500

// Labeller labels every tracking hit as a person's or a machine's as it arrives (machines.Classifier)
// and applies the relabels later hits call for. Nothing it does on the hot path waits on the store:
// a message's send time comes from a bounded cache, or from the time its id carries while Run
// fetches the delivery's send time in the background.
type Labeller struct {
	classifier *machines.Classifier
	store      LabelStore
	opts       LabellerOptions
	seed       maphash.Seed
	sent       *lru.Cache // message id -> sentEntry
	misses     chan string
	now        func() time.Time

	file   *heldFile  // nil without LabellerOptions.HeldPath
	fileMu sync.Mutex // serialises the file's writes, taken before mu: no hit's Label waits on a sync

	mu       sync.Mutex
	inflight map[string]*machines.Label // events labelled but not yet stored -> relabel waiting for them
	asked    map[string]bool            // message ids queued for the cache
	held     []Relabel                  // relabels waiting for the backlog to clear or the store to answer
	retrying []Relabel                  // held ones a retry has taken to the store and not yet applied
}

// sentEntry is what the cache knows of a message's send time.
type sentEntry struct {
	at      time.Time // the delivery's send time; zero when it had recorded none
	checked time.Time // when the store was asked
}

// NewLabeller returns a labeller holding the relabels opts.HeldPath kept; call Run to fill its
// send-time cache from the store and apply them.
func NewLabeller(c *machines.Classifier, store LabelStore, opts LabellerOptions) (*Labeller, error) {
	if opts.CacheSize <= 0 {
		opts.CacheSize = 20_000
	}
	if opts.RecheckAfter <= 0 {
		opts.RecheckAfter = 30 * time.Second
	}
	if opts.RetryEvery <= 0 {
		opts.RetryEvery = 2 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	cache, _ := lru.New(opts.CacheSize) // errors only for a size <= 0
	l := &Labeller{classifier: c, store: store, opts: opts, seed: maphash.MakeSeed(), sent: cache,
		misses: make(chan string, 1024), now: time.Now, inflight: map[string]*machines.Label{}, asked: map[string]bool{}}
	if opts.HeldPath != "" {
		l.file = &heldFile{path: opts.HeldPath}
		held, bad, err := l.file.load()
		if err != nil {
			return nil, err
		}
		if bad > 0 {
			opts.Log.Warn("held machine relabels: unreadable lines skipped", "path", opts.HeldPath, "lines", bad)
		}
		if len(held) > 0 {
			opts.Log.Info("held machine relabels restored; applied once the spool is replayed", "events", len(held))
		}
		l.held = held
	}
	return l, nil
}

// Settlement is what Label leaves for Settle: the event it labelled and the relabels it called for.
type Settlement struct {
	eventID  string
	relabels []machines.Relabel
}

// Label labels ev, made from h, in place. Call Settle with the result once ev is recorded (or has
// failed to be), so relabels reach only stored events.
func (l *Labeller) Label(h Hit, ev *Event) Settlement {
	l.mu.Lock()
	l.inflight[ev.ID] = nil // before the classifier can name it in another hit's relabels
	l.mu.Unlock()

	mh := machines.Hit{ID: ev.ID, Method: h.Method, UserAgent: h.UserAgent, At: h.At, SentAt: l.sentAt(h.Token.MessageID, h.At)}
	mh.IP, _ = netip.ParseAddr(h.IP)
	switch h.Token.Kind {
	case TokenOpen:
		mh.Kind = machines.Open
	case TokenHoneypot:
		mh.Kind = machines.Honeypot
	case TokenAttachment:
		mh.Kind, mh.Link = machines.Click, "a"+strconv.Itoa(h.Token.Link)
	default:
		mh.Kind, mh.Link = machines.Click, strconv.Itoa(h.Token.Link)
	}
	mh.Visitor = l.visitor(h)
	lbl, relabels := l.classifier.Label(mh)
	if h.Token.Kind != TokenHoneypot { // Hit.Event labelled the honeypot already
		ev.Machine, ev.Reason, ev.Rule = lbl.Machine, string(lbl.Reason), lbl.Rule
	}
	if lbl.Reason == machines.ReasonProxied {
		ev.Device.Type = DeviceUnknown // a person, reading through a proxy that hides their device
	}
	return Settlement{eventID: ev.ID, relabels: relabels}
}

// visitor is the classifier's key for "the same client": message, recipient, address and agent,
// hashed so the classifier's memory holds no addresses.
func (l *Labeller) visitor(h Hit) string {
	var m maphash.Hash
	m.SetSeed(l.seed)
	m.WriteString(h.Token.MessageID)
	m.WriteByte(0)
	m.WriteString(strconv.Itoa(h.Token.Recipient))
	m.WriteByte(0)
	m.WriteString(h.IP)
	m.WriteByte(0)
	m.WriteString(h.UserAgent)
	return strconv.FormatUint(m.Sum64(), 36)
}

// sentAt returns the message's send time as far as it is known without waiting: the delivery's from
// the cache, else the creation time its id carries (queueing a look-up when the cache has nothing
// current); zero when neither is known, which turns the send-time rules off for the hit. An id's time
// after the hit is not believed: ids keep their order within a process, so one made right after an
// id with a later time (a test clock, a skewed peer) carries that time, not its own.
func (l *Labeller) sentAt(messageID string, hitAt time.Time) time.Time {
	if v, ok := l.sent.Get(messageID); ok {
		e := v.(sentEntry)
		if !e.at.IsZero() {
			return e.at
		}
		if l.now().Sub(e.checked) >= l.opts.RecheckAfter {
			l.ask(messageID)
		}
	} else {
		l.ask(messageID)
	}
	if at, ok := IDTime(messageID); ok && !at.After(hitAt) {
		return at
	}
	return time.Time{}
}

// ask queues a look-up of a message's send time unless one is queued; a full queue drops it.
func (l *Labeller) ask(messageID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.asked[messageID] {
		return
	}
	select {
	case l.misses <- messageID:
		l.asked[messageID] = true
	default:
	}
}

// Settle applies, once the event Label labelled is recorded, the relabels its hit called for (those
// of events still on their way wait for them) and any relabel that came for this event meanwhile.
// While events wait in the spool, or when the store fails, the relabels are held and Run applies them
// later, so that none is lost to an outage and no hit waits on the store for one.
func (l *Labeller) Settle(ctx context.Context, s Settlement) {
	var apply []Relabel
	l.mu.Lock()
	if lbl, ok := l.inflight[s.eventID]; ok {
		delete(l.inflight, s.eventID)
		if lbl != nil {
			apply = append(apply, relabelOf(s.eventID, *lbl))
		}
	}
	for _, r := range s.relabels {
		if waiting, ok := l.inflight[r.ID]; ok {
			if waiting == nil {
				lbl := r.Label
				l.inflight[r.ID] = &lbl
			}
			continue
		}
		apply = append(apply, relabelOf(r.ID, r.Label))
	}
	l.mu.Unlock()
	if len(apply) == 0 {
		return
	}
	if l.opts.Backlog != nil && l.opts.Backlog() {
		l.hold(ctx, apply)
		return
	}
	if err := l.store.Relabel(ctx, apply); err != nil {
		l.opts.Log.WarnContext(ctx, "machine relabels not stored yet; held to try again", "events", len(apply), "err", err)
		l.hold(ctx, apply)
	}
}

// hold keeps rs for retryHeld, in the file too when there is one, dropping the oldest held past
// maxHeld.
func (l *Labeller) hold(ctx context.Context, rs []Relabel) {
	l.fileMu.Lock()
	defer l.fileMu.Unlock()
	l.mu.Lock()
	l.held = append(l.held, rs...)
	drop := len(l.held) - maxHeld
	if drop > 0 {
		l.held = append(l.held[:0:0], l.held[drop:]...)
	}
	kept := append(slices.Clip(l.retrying), l.held...) // the file keeps what a retry has in hand too
	l.mu.Unlock()
	if drop > 0 {
		l.opts.Log.ErrorContext(ctx, "machine relabels dropped: too many waiting for the store", "events", drop)
	}
	if l.file == nil {
		return
	}
	var err error
	if drop > 0 {
		err = l.file.replace(kept)
	} else {
		err = l.file.add(rs)
	}
	if err != nil {
		l.opts.Log.ErrorContext(ctx, "machine relabels held in memory only: a restart before the store answers loses them",
			"events", len(rs), "err", err)
	}
}

// retryHeld applies the held relabels, a step at a time, once no events wait in the spool; what the
// store refuses is held again for the next try.
func (l *Labeller) retryHeld(ctx context.Context) {
	if l.opts.Backlog != nil && l.opts.Backlog() {
		return
	}
	l.mu.Lock()
	rs := l.held
	l.held, l.retrying = nil, rs
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.retrying = nil
		l.mu.Unlock()
	}()
	applied := 0
	for len(rs) > 0 {
		step := rs[:min(heldStep, len(rs))]
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := l.store.Relabel(rctx, step)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				l.opts.Log.WarnContext(ctx, "held machine relabels not stored yet", "events", len(rs), "err", err)
			}
			l.mu.Lock()
			l.held, l.retrying = append(rs, l.held...), nil
			l.mu.Unlock()
			break
		}
		applied += len(step)
		rs = rs[len(step):]
		l.mu.Lock()
		l.retrying = rs
		l.mu.Unlock()
	}
	if applied == 0 {
		return
	}
	l.opts.Log.InfoContext(ctx, "held machine relabels applied", "events", applied)
	if l.file == nil {
		return
	}
	l.fileMu.Lock()
	defer l.fileMu.Unlock()
	l.mu.Lock()
	left := l.held
	l.mu.Unlock()
	if err := l.file.replace(left); err != nil {
		// The file still names the applied ones too: applied again after a restart, they change nothing.
		l.opts.Log.WarnContext(ctx, "held machine relabels applied, but their file not rewritten", "err", err)
	}
}

func relabelOf(id string, lbl machines.Label) Relabel {
	return Relabel{EventID: id, Reason: string(lbl.Reason), Rule: lbl.Rule}
}

// Sent tells the labeller that a message is being sent at, as delivery hands it to the mailer: the
// hits that follow at once are judged from it, not from the creation time its id carries. An earlier
// send time known for it stays: a retry that sends the rest later does not move the first mails'.
func (l *Labeller) Sent(messageID string, at time.Time) {
	if v, ok := l.sent.Get(messageID); ok {
		if e := v.(sentEntry); !e.at.IsZero() && !e.at.After(at) {
			return
		}
	}
	l.sent.Add(messageID, sentEntry{at: at.UTC(), checked: l.now()})
}

// Warm loads the send times of messageIDs into the cache now, for callers that know which messages
// are about to be hit (and for tests).
func (l *Labeller) Warm(ctx context.Context, messageIDs ...string) error {
	times, err := l.store.SentTimes(ctx, messageIDs)
	if err != nil {
		return err
	}
	checked := l.now()
	for _, id := range messageIDs {
		l.sent.Add(id, sentEntry{at: times[id], checked: checked})
	}
	return nil
}

// fillBatch is how many queued look-ups Run answers with one store read.
const fillBatch = 100

// Run answers queued send-time look-ups, a batch per store read, and applies held relabels every
// RetryEvery, until ctx is done.
func (l *Labeller) Run(ctx context.Context) {
	go func() {
		t := time.NewTicker(l.opts.RetryEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				l.retryHeld(ctx)
			}
		}
	}()
	for {
		var ids []string
		select {
		case <-ctx.Done():
			return
		case id := <-l.misses:
			ids = append(ids, id)
		}
	more:
		for len(ids) < fillBatch {
			select {
			case id := <-l.misses:
				ids = append(ids, id)
			default:
				break more
			}
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := l.Warm(rctx, ids...)
		cancel()
		if err != nil && ctx.Err() == nil {
			l.opts.Log.WarnContext(ctx, "send times not read; labelling without them for now", "messages", len(ids), "err", err)
		}
		l.mu.Lock()
		for _, id := range ids {
			delete(l.asked, id)
		}
		l.mu.Unlock()
	}
}
