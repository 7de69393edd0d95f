package inbound

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/engage-email/engage/followed"
)

// maxSentLookups bounds the Sent Items lookups for one message that matched nothing: the first ids it
// refers to name the mail it answers (In-Reply-To) and the newest of its thread (References).
const maxSentLookups = 3

// matchOutlookSend finds the render a message answers among mail the Outlook add-in had Outlook send,
// which Engage learns of only here: the referenced message in mailbox's Sent Items whose tracking token
// names a followed message of mailbox's owner is recorded as that render's send, so later mail matches
// it in the store. followed.ErrNotFound when none is found.
func (p *Processor) matchOutlookSend(ctx context.Context, mailbox string, ids []string) (Match, error) {
	notFound := fmt.Errorf("inbound: no Outlook send matches: %w", followed.ErrNotFound)
	if p.mailbox == nil || p.tokens == nil {
		return Match{}, notFound
	}
	for _, id := range ids[:min(len(ids), maxSentLookups)] {
		sent, err := p.mailbox.SentMessage(ctx, mailbox, id)
		if errors.Is(err, followed.ErrNotFound) {
			continue
		}
		if err != nil {
			return Match{}, fmt.Errorf("inbound: look for %s in the Sent Items of %s: %w", id, mailbox, err)
		}
		tok, ok := p.tokens.TokenIn(sent.HTML)
		if !ok {
			continue
		}
		render, err := p.outlookRender(ctx, mailbox, tok)
		if errors.Is(err, followed.ErrNotFound) {
			continue
		}
		if err != nil {
			return Match{}, err
		}
		if sent.InternetMessageID == "" {
			sent.InternetMessageID = id
		}
		s := OutlookSend{MessageID: tok.MessageID, Render: render, InternetMessageID: sent.InternetMessageID,
			ConversationID: sent.ConversationID, SentAt: sent.SentAt.UTC()}
		if err := p.store.RecordOutlookSend(ctx, s); err != nil {
			return Match{}, fmt.Errorf("inbound: record the Outlook send of %s: %w", tok.MessageID, err)
		}
		p.opts.Log.InfoContext(ctx, "mail the Outlook add-in sent found in Sent Items", "mailbox", mailbox, "message", tok.MessageID, "render", render)
		return p.store.MatchSend(ctx, []string{id}, "")
	}
	return Match{}, notFound
}

// outlookRender is the render of the token's message that mailbox's owner sent to the token's
// recipient; followed.ErrNotFound when the message is gone, another owner's, or has no such render.
func (p *Processor) outlookRender(ctx context.Context, mailbox string, tok followed.Token) (int, error) {
	m, err := p.events.Message(ctx, tok.MessageID)
	if err != nil {
		return 0, fmt.Errorf("inbound: message %s: %w", tok.MessageID, err)
	}
	if !strings.EqualFold(m.Owner, mailbox) {
		return 0, fmt.Errorf("inbound: message %s is not %s's: %w", m.ID, mailbox, followed.ErrNotFound)
	}
	rs, err := p.events.Renders(ctx, m.ID)
	if err != nil {
		return 0, fmt.Errorf("inbound: renders of %s: %w", m.ID, err)
	}
	for _, r := range rs {
		if r.Recipient == tok.Recipient {
			return r.Index, nil
		}
	}
	return 0, fmt.Errorf("inbound: message %s has no render for recipient %d: %w", m.ID, tok.Recipient, followed.ErrNotFound)
}
