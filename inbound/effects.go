package inbound

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/replies"
)

// Reasons written on suppressions, so admins can tell why an address was stopped.
const (
	SuppressHardBounce  = "HARD_BOUNCE"
	SuppressSoftBounces = "SOFT_BOUNCES"
)

// handle classifies msg, matches it to the render it answers and records the interaction and its effects.
// A message that answers nothing Engage sent, or mail of another owner, is ignored.
func (p *Processor) handle(ctx context.Context, mailbox string, msg Message) error {
	res := replies.Classify(msg.Inbound)
	ids := replies.ReferencedIDs(msg.Inbound)
	match, err := p.store.MatchSend(ctx, ids, msg.ConversationID)
	if errors.Is(err, followed.ErrNotFound) {
		match, err = p.matchOutlookSend(ctx, mailbox, ids)
	}
	if errors.Is(err, followed.ErrNotFound) {
		p.opts.Log.DebugContext(ctx, "inbound mail answers no followed message; ignored", "mailbox", mailbox, "kind", res.Kind)
		return nil
	}
	if err != nil {
		return fmt.Errorf("inbound: match: %w", err)
	}
	m, err := p.events.Message(ctx, match.MessageID)
	if errors.Is(err, followed.ErrNotFound) {
		return nil // erased since it was sent
	}
	if err != nil {
		return fmt.Errorf("inbound: message %s: %w", match.MessageID, err)
	}
	if !strings.EqualFold(m.Owner, mailbox) {
		p.opts.Log.WarnContext(ctx, "inbound mail matched another owner's message; ignored", "mailbox", mailbox, "message", m.ID)
		return nil
	}
	at := msg.ReceivedAt.UTC()
	if at.IsZero() {
		at = p.opts.Now().UTC()
	}
	at = at.Truncate(time.Millisecond)
	idTime := at
	if !msg.Date.IsZero() {
		idTime = msg.Date
	}
	targets, err := p.recipients(ctx, m, match.Render, res, msg.Inbound.From)
	if err != nil {
		return err
	}
	kind := map[replies.Kind]followed.EventKind{replies.KindReply: followed.Replied,
		replies.KindAutoReply: followed.AutoReplied, replies.KindBounce: followed.Bounced}[res.Kind]
	reason := ""
	if res.Bounce != nil {
		reason = "SOFT"
		if res.Bounce.Hard {
			reason = "HARD"
		}
		if res.Bounce.Status != "" {
			reason += " " + res.Bounce.Status
		}
	}
	evs := make([]followed.Event, 0, len(targets))
	for _, r := range targets {
		evs = append(evs, followed.Event{ID: eventID(idTime, mailbox, msg.InternetMessageID, r), MessageID: m.ID, Kind: kind,
			At: at, Recipient: r, Link: -1, Reason: reason, Rule: res.Rule})
	}
	if _, err := p.events.RecordEvents(ctx, evs); err != nil {
		return fmt.Errorf("inbound: record %s of %s: %w", kind, m.ID, err)
	}
	for _, ev := range evs {
		email := strings.ToLower(m.RecipientEmail(ev.Recipient))
		if email == "" {
			continue
		}
		if err := p.effects(ctx, email, ev, res); err != nil {
			return err
		}
	}
	p.opts.Log.InfoContext(ctx, "inbound mail recorded", "message", m.ID, "kind", kind, "rule", res.Rule, "recipients", len(evs))
	return nil
}

// recipients decides whom the interaction is about: the failed recipients of a bounce, else the reply's
// sender; failing that, the render's own recipient or, for a one-recipient message, that recipient.
func (p *Processor) recipients(ctx context.Context, m followed.Message, render int, res replies.Result, from string) ([]int, error) {
	index := func(email string) int {
		for i, r := range m.Recipients {
			if strings.EqualFold(r.Email, strings.TrimSpace(email)) {
				return i
			}
		}
		return followed.Shared
	}
	var out []int
	if res.Bounce != nil {
		seen := map[int]bool{}
		for _, e := range res.Bounce.Recipients {
			if i := index(e); i != followed.Shared && !seen[i] {
				seen[i] = true
				out = append(out, i)
			}
		}
	} else if i := index(from); i != followed.Shared {
		out = append(out, i)
	}
	if len(out) > 0 {
		return out, nil
	}
	rs, err := p.events.Renders(ctx, m.ID)
	if err != nil {
		return nil, fmt.Errorf("inbound: renders of %s: %w", m.ID, err)
	}
	for _, r := range rs {
		if r.Index == render && r.Recipient != followed.Shared {
			return []int{r.Recipient}, nil
		}
	}
	if len(m.Recipients) == 1 {
		return []int{0}, nil
	}
	return []int{followed.Shared}, nil
}

// effects applies what an interaction means for the address: a reply ends its soft-bounce streak, a
// hard bounce (or SoftBounceLimit soft ones in a row) suppresses it for SuppressMonths.
func (p *Processor) effects(ctx context.Context, email string, ev followed.Event, res replies.Result) error {
	switch {
	case res.Kind == replies.KindReply:
		if err := p.store.ResetBounceStreak(ctx, email); err != nil {
			return fmt.Errorf("inbound: reset bounce streak of %s: %w", email, err)
		}
	case res.Kind == replies.KindBounce && res.Bounce != nil:
		until := p.opts.Now().UTC().AddDate(0, p.opts.SuppressMonths, 0)
		reason := SuppressHardBounce
		if res.Bounce.Status != "" {
			reason += " " + res.Bounce.Status
		}
		if !res.Bounce.Hard {
			streak, err := p.store.AddSoftBounce(ctx, email, ev.ID, ev.At)
			if err != nil {
				return fmt.Errorf("inbound: count soft bounce of %s: %w", email, err)
			}
			if streak < replies.SoftBounceLimit {
				return nil
			}
			reason = fmt.Sprintf("%s %d in a row", SuppressSoftBounces, streak)
		}
		if err := p.suppress.Suppress(ctx, email, reason, until); err != nil {
			return fmt.Errorf("inbound: suppress %s: %w", email, err)
		}
	}
	return nil
}

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// eventID is the same for the same inbound message and recipient however often it is processed (Graph
// retries, the delta catch-up, a crash before the queue was told), so it is stored once; like
// followed.NewID it starts with the time, so listings page in order.
func eventID(at time.Time, mailbox, internetID string, recipient int) string {
	h := sha256.Sum256([]byte(strings.ToLower(mailbox) + "\x00" + internetID + "\x00" + fmt.Sprint(recipient)))
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(max(at.UnixMilli(), 0))<<16)
	copy(b[6:], h[:10])
	return idEncoding.EncodeToString(b[:])
}
