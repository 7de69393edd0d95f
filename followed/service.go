package followed

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

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
	if err := s.store.CreateMessage(ctx, m); err != nil {
		return Message{}, fmt.Errorf("followed: store message: %w", err)
	}
	return m, nil
}

func (s *Service) prepare(who auth.Identity, in FollowInput) (Message, error) {
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
		Subject:    strings.TrimSpace(in.Subject),
		HTML:       html,
		Recipients: recipients,
		Individual: in.Individual,
		Following:  in.Follow,
		TemplateID: in.TemplateID,
		CreatedAt:  now,
	}
	if !m.Following {
		m.NotFollowedReason = "The sender chose not to follow this message."
	}
	s.render(&m)
	return m, nil
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
		out = append(out, Recipient{Email: email, Name: strings.TrimSpace(r.Name), Kind: kind})
	}
	return out, nil
}

// render fills m.Renders, m.Links and m.Warnings: one tracked render per recipient with individual
// sending, one shared render otherwise, and the author's HTML untouched when not following.
func (s *Service) render(m *Message) {
	all := make([]int, len(m.Recipients))
	for i := range all {
		all[i] = i
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
	for gi, targets := range groups {
		rcpt := Shared
		if m.Individual {
			rcpt = targets[0]
		}
		res := s.rewriter(m.ID, rcpt).Rewrite(m.HTML)
		m.Renders = append(m.Renders, Render{Index: gi, Recipient: rcpt, Targets: targets, HTML: res.HTML, Tracked: true})
		if gi == 0 {
			m.Warnings = res.Warnings
			for i, u := range res.Links {
				m.Links = append(m.Links, Link{Index: i, URL: u})
			}
		}
	}
}

func (s *Service) rewriter(messageID string, recipient int) Rewriter {
	pixel, err := s.trackingURL("o", Token{Kind: TokenOpen, MessageID: messageID, Recipient: recipient})
	if err == nil {
		pixel += ".gif"
	}
	return Rewriter{
		Click: func(i int, target string) string {
			tracked, err := s.trackingURL("c", Token{Kind: TokenClick, MessageID: messageID, Recipient: recipient, Link: i, URL: target})
			if err != nil {
				return target // the rewriter caps URL length, so this does not happen; a working link beats a tracked one
			}
			return tracked
		},
		Pixel: pixel,
		IsOwn: s.IsOwnURL,
	}
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
