package followed

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/engage-email/engage/auth"
)

// Limits bound what one message may hold; the defaults suit a salesperson's email, not a newsletter run.
type Limits struct {
	MaxHTMLBytes  int // default 5 MiB
	MaxRecipients int // default 500
}

// Service follows messages and answers what happened to them.
type Service struct {
	store  Store
	keys   *KeyRing
	base   *url.URL
	limits Limits
	gate   Gate
	files  FileSource  // lists files shared as links (attachments feature); nil: none
	optOut atomic.Bool // renders for one recipient carry an opt-out link (SetOptOutLinks)
	now    func() time.Time
}

// NewService returns a Service whose tracking links start with publicURL.
func NewService(store Store, keys *KeyRing, publicURL string, limits Limits) (*Service, error) {
	base, err := url.Parse(strings.TrimRight(publicURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("followed: public URL %q must be an absolute http(s) URL", publicURL)
	}
	if limits.MaxHTMLBytes <= 0 {
		limits.MaxHTMLBytes = 5 << 20
	}
	if limits.MaxRecipients <= 0 {
		limits.MaxRecipients = 500
	}
	return &Service{store: store, keys: keys, base: base, limits: limits, now: time.Now}, nil
}

// SetGate makes Follow and RetryFollow ask g who may be followed; call it before serving. Without a
// gate everyone is followed and every signal tracked.
func (s *Service) SetGate(g Gate) { s.gate = g }

// FollowInput is what the add-in sends when the salesperson sends a message.
type FollowInput struct {
	Subject    string
	HTML       string
	Text       string
	Recipients []Recipient
	Individual bool
	Follow     bool
	TemplateID string
}

// Follow validates the input, renders the message (tracked when following) and stores it whole.
func (s *Service) Follow(ctx context.Context, who auth.Identity, in FollowInput) (Message, error) {
	m, err := s.prepare(who, in)
	if err != nil {
		return Message{}, err
	}
	if err := s.decide(ctx, &m); err != nil {
		return Message{}, err
	}
	if err := s.store.CreateMessage(ctx, m); err != nil {
		return Message{}, fmt.Errorf("followed: store message: %w", err)
	}
	return m, nil
}

// Limits of a message's header text, so that what is stored can be sent: a subject is one header
// line, at most the 998 bytes RFC 5322 allows, and a display name shares a line with its address.
const (
	MaxSubject       = 998
	MaxRecipientName = 256
)

// headerText trims s and checks it can stand in a header: not too long, valid UTF-8, and no control
// character but tab (a line break would end the header there and start another).
func headerText(what, s string, max int) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case len(s) > max:
		return "", fmt.Errorf("%w: the %s is %d bytes, over the limit of %d", ErrBadInput, what, len(s), max)
	case !utf8.ValidString(s):
		return "", fmt.Errorf("%w: the %s is not valid UTF-8", ErrBadInput, what)
	case strings.ContainsFunc(s, func(r rune) bool { return r != '\t' && unicode.IsControl(r) }):
		return "", fmt.Errorf("%w: the %s holds a line break or another control character", ErrBadInput, what)
	}
	return s, nil
}

func (s *Service) prepare(who auth.Identity, in FollowInput) (Message, error) {
	subject, err := headerText("subject", in.Subject, MaxSubject)
	if err != nil {
		return Message{}, err
	}
	html, err := s.body(in)
	if err != nil {
		return Message{}, err
	}
	recipients, err := s.recipients(in.Recipients)
	if err != nil {
		return Message{}, err
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	m := Message{
		ID:         NewID(now),
		Owner:      who.Email,
		Subject:    subject,
		HTML:       html,
		Recipients: recipients,
		Individual: in.Individual,
		Following:  in.Follow,
		TemplateID: in.TemplateID,
		CreatedAt:  now,
	}
	if !m.Following {
		m.NotFollowedReason = ReasonSenderChoice
	}
	return m, nil
}

// ReasonSenderChoice is the NotFollowedReason of a message sent with "Don't follow".
const ReasonSenderChoice = "The sender chose not to follow this message."

// RetryFollow asks the gate again about a message the caller may see (after an admin changed a
// preference or setting), renders it anew and stores the renders; counters are kept. Only before its
// send starts: mail that went out as it was cannot be followed after the fact.
func (s *Service) RetryFollow(ctx context.Context, who auth.Identity, id string) (Message, error) {
	m, err := s.Message(ctx, who, id)
	if err != nil {
		return Message{}, err
	}
	if m.NotFollowedReason == ReasonSenderChoice {
		return Message{}, fmt.Errorf("%w: the sender chose not to follow message %s", ErrBadInput, id)
	}
	started, err := s.store.SendStarted(ctx, id)
	if err != nil {
		return Message{}, fmt.Errorf("followed: retry %s: %w", id, err)
	}
	if started { // checked again as the renders are written; this saves sharing files for nothing
		return Message{}, fmt.Errorf("followed: retry %s: %w", id, ErrSendStarted)
	}
	m.Following, m.NotFollowedReason, m.Renders, m.Links, m.Warnings = true, "", nil, nil, nil
	if err := s.decide(ctx, &m); err != nil {
		return Message{}, err
	}
	if err := s.store.UpdateRenders(ctx, m); err != nil {
		return Message{}, fmt.Errorf("followed: retry %s: %w", id, err)
	}
	out, err := s.store.Message(ctx, id)
	if err != nil {
		return Message{}, fmt.Errorf("followed: retry %s: %w", id, err)
	}
	return out, nil
}

// decide asks the gate about m's recipients (when m is to be followed) and renders m accordingly. A
// failing gate fails the call: following someone who may have said no is worse than a retry.
func (s *Service) decide(ctx context.Context, m *Message) error {
	v := Verdict{TrackOpens: true, TrackLinks: true, TrackAttachments: true}
	if m.Following && s.gate != nil {
		emails := make([]string, len(m.Recipients))
		for i, r := range m.Recipients {
			emails[i] = r.Email
		}
		var err error
		if v, err = s.gate.Verdict(ctx, emails); err != nil {
			return fmt.Errorf("followed: who may be followed: %w", err)
		}
	}
	s.render(m, v)
	return s.shareFiles(ctx, m, v)
}

// notFollowedReason says who may not be followed and why, e.g. "Not followed: ann@x.com (DO_NOT_ALLOW)."
func notFollowedReason(blocked []Blocked) string {
	parts := make([]string, 0, len(blocked))
	disabled := true
	for _, b := range blocked {
		parts = append(parts, b.Email+" ("+b.Reason+")")
		disabled = disabled && b.Reason == ReasonEngagementDisabled
	}
	if disabled {
		return "Email engagement is switched off for the organisation (" + ReasonEngagementDisabled + ")."
	}
	return "Not followed: " + strings.Join(parts, ", ") + "."
}

func (s *Service) body(in FollowInput) (string, error) {
	switch {
	case in.HTML != "" && in.Text != "":
		return "", fmt.Errorf("%w: give html or text, not both", ErrBadInput)
	case in.HTML == "" && in.Text == "":
		return "", fmt.Errorf("%w: the message has no body: give html or text", ErrBadInput)
	}
	size := len(in.HTML) + len(in.Text)
	if size > s.limits.MaxHTMLBytes {
		return "", fmt.Errorf("%w: the body is %d bytes, over the limit of %d", ErrBadInput, size, s.limits.MaxHTMLBytes)
	}
	if in.Text != "" {
		return TextToHTML(in.Text), nil
	}
	return in.HTML, nil
}

func (s *Service) recipients(in []Recipient) ([]Recipient, error) {
	if len(in) == 0 {
		return nil, fmt.Errorf("%w: the message has no recipients", ErrBadInput)
	}
	if len(in) > s.limits.MaxRecipients {
		return nil, fmt.Errorf("%w: %d recipients, over the limit of %d", ErrBadInput, len(in), s.limits.MaxRecipients)
	}
	out := make([]Recipient, 0, len(in))
	seen := map[string]bool{}
	for _, r := range in {
		email, err := auth.NormalizeEmail(r.Email)
		if err != nil {
			return nil, fmt.Errorf("%w: recipient %s", ErrBadInput, err)
		}
		if seen[email] {
			continue // one person, one render: a duplicate address would split their opens
		}
		seen[email] = true
		kind := r.Kind
		switch kind {
		case "":
			kind = KindTo
		case KindTo, KindCc, KindBcc:
		default:
			return nil, fmt.Errorf("%w: recipient %s has unknown kind %q", ErrBadInput, email, kind)
		}
		name, err := headerText("name of "+email, r.Name, MaxRecipientName)
		if err != nil {
			return nil, err
		}
		out = append(out, Recipient{Email: email, Name: name, Kind: kind})
	}
	return out, nil
}

// render fills m.Renders, m.Links and m.Warnings: one tracked render per recipient with individual
// sending, one shared render otherwise, and the author's HTML untouched when not following. A blocked
// recipient stops the whole message, except with individual sending, where they alone get the
// author's HTML untouched.
func (s *Service) render(m *Message, v Verdict) {
	all := make([]int, len(m.Recipients))
	for i := range all {
		all[i] = i
	}
	blocked := v.blockedSet()
	if m.Following && len(blocked) > 0 && (!m.Individual || len(blocked) >= len(m.Recipients)) {
		m.Following, m.NotFollowedReason = false, notFollowedReason(v.Blocked)
	}
	if !m.Following {
		m.Renders = []Render{{Index: 0, Recipient: Shared, Targets: all, HTML: m.HTML}}
		return
	}
	groups := [][]int{all}
	if m.Individual {
		groups = groups[:0]
		for i := range m.Recipients {
			groups = append(groups, []int{i})
		}
	}
	linked := false
	for gi, targets := range groups {
		rcpt := Shared
		if m.Individual {
			rcpt = targets[0]
			if reason, ok := blocked[m.Recipients[rcpt].Email]; ok {
				m.Renders = append(m.Renders, Render{Index: gi, Recipient: rcpt, Targets: targets, HTML: m.HTML})
				m.Warnings = append(m.Warnings, m.Recipients[rcpt].Email+" is not followed ("+reason+"): sent an untracked copy")
				continue
			}
		}
		res := s.rewriter(m.ID, rcpt, v).Rewrite(s.withOptOut(m.HTML, m.ID, rcpt))
		m.Renders = append(m.Renders, Render{Index: gi, Recipient: rcpt, Targets: targets, HTML: res.HTML, Tracked: true})
		if !linked {
			linked = true
			m.Warnings = append(m.Warnings, res.Warnings...)
			for i, u := range res.Links {
				m.Links = append(m.Links, Link{Index: i, URL: u})
			}
		}
	}
}

// rewriter tracks the signals v allows: the pixel for opens, redirects for links.
func (s *Service) rewriter(messageID string, recipient int, v Verdict) Rewriter {
	rw := Rewriter{IsOwn: s.IsOwnURL}
	// The honeypot marks link scanners (machines package); its target is Engage's own root, harmless to
	// fetch. It is a tracked link: a recipient whose links are not tracked gets none.
	if hp, err := s.trackingURL("h", Token{Kind: TokenHoneypot, MessageID: messageID, Recipient: recipient,
		URL: s.base.String() + "/"}); err == nil && v.TrackLinks {
		rw.Honeypot = hp
	}
	if v.TrackOpens {
		pixel, err := s.trackingURL("o", Token{Kind: TokenOpen, MessageID: messageID, Recipient: recipient})
		if err == nil {
			rw.Pixel = pixel + ".gif"
		}
	}
	if v.TrackLinks {
		rw.Click = func(i int, target string) string {
			tracked, err := s.trackingURL("c", Token{Kind: TokenClick, MessageID: messageID, Recipient: recipient, Link: i, URL: target})
			if err != nil {
				return target // the rewriter caps URL length, so this does not happen; a working link beats a tracked one
			}
			return tracked
		}
	}
	return rw
}

// Paths of the tracking endpoints under the public URL; server routes them.
const (
	PathOpen       = "/t/o/"
	PathClick      = "/t/c/"
	PathAttachment = "/t/a/"
	PathHoneypot   = "/t/h/"
)

func (s *Service) trackingURL(kind string, t Token) (string, error) {
	tok, err := s.keys.Sign(t)
	if err != nil {
		return "", fmt.Errorf("followed: sign %s token: %w", t.Kind, err)
	}
	return s.base.String() + "/t/" + kind + "/" + tok, nil
}

// IsOwnURL reports whether u already points at this Engage, so it is never wrapped twice.
func (s *Service) IsOwnURL(u string) bool {
	p, err := url.Parse(u)
	return err == nil && strings.EqualFold(p.Host, s.base.Host) && strings.HasPrefix(p.Path, s.base.Path+"/t/")
}
