package consent

import (
	"context"
	"fmt"
	"time"

	"github.com/engage-email/engage/auth"
	"github.com/engage-email/engage/followed"
)

// Followability is who of a message's recipients may be followed.
type Followability struct {
	Allowed []string
	Blocked []followed.Blocked
}

// Followability answers for the caller's recipients (addresses are checked and normalised first).
func (s *Service) Followability(ctx context.Context, _ auth.Identity, recipients []string) (Followability, error) {
	if len(recipients) > 500 {
		return Followability{}, fmt.Errorf("%w: %d recipients, over the limit of 500", followed.ErrBadInput, len(recipients))
	}
	emails := make([]string, 0, len(recipients))
	seen := map[string]bool{}
	for _, r := range recipients {
		e, err := auth.NormalizeEmail(r)
		if err != nil {
			return Followability{}, fmt.Errorf("%w: recipient %s", followed.ErrBadInput, err)
		}
		if !seen[e] {
			seen[e] = true
			emails = append(emails, e)
		}
	}
	v, err := s.Verdict(ctx, emails)
	if err != nil {
		return Followability{}, err
	}
	f := Followability{Allowed: []string{}, Blocked: v.Blocked}
	blocked := map[string]bool{}
	for _, b := range v.Blocked {
		blocked[b.Email] = true
	}
	for _, e := range emails {
		if !blocked[e] {
			f.Allowed = append(f.Allowed, e)
		}
	}
	return f, nil
}

// Verdict implements followed.Gate for normalised addresses. The most specific rule wins: an
// address's own preference over its domain's, and a bounce suppression over an ALLOW.
func (s *Service) Verdict(ctx context.Context, recipients []string) (followed.Verdict, error) {
	st, err := s.settings(ctx)
	if err != nil {
		return followed.Verdict{}, err
	}
	v := followed.Verdict{TrackOpens: st.TrackOpens, TrackLinks: st.TrackLinks, TrackAttachments: st.TrackAttachments}
	if !st.Enabled {
		for _, r := range recipients {
			v.Blocked = append(v.Blocked, followed.Blocked{Email: r, Reason: ReasonEngagementDisabled})
		}
		return v, nil
	}
	var targets []string
	for _, r := range recipients {
		targets = append(targets, r, domainOf(r), ErasedTarget(r))
	}
	prefs, err := s.store.LatestPreferences(ctx, targets)
	if err != nil {
		return followed.Verdict{}, fmt.Errorf("consent: preferences: %w", err)
	}
	sups, err := s.store.Suppressions(ctx, recipients)
	if err != nil {
		return followed.Verdict{}, fmt.Errorf("consent: suppressions: %w", err)
	}
	now := s.now()
	for _, r := range recipients {
		if reason := decide(st, prefs, sups, r, now); reason != "" {
			v.Blocked = append(v.Blocked, followed.Blocked{Email: r, Reason: reason})
		}
	}
	return v, nil
}

// decide returns why r may not be followed, or "" when it may.
func decide(st Settings, prefs map[string]Entry, sups map[string]Suppression, r string, now time.Time) string {
	own, hasOwn := prefs[r]
	if !hasOwn {
		own, hasOwn = prefs[ErasedTarget(r)]
	}
	domain, hasDomain := prefs[domainOf(r)]
	switch {
	case hasOwn && own.Preference == DoNotAllow:
		return ReasonDoNotAllow
	case !hasOwn && hasDomain && domain.Preference == DoNotAllow:
		return ReasonDomainDoNotAllow
	}
	if sup, ok := sups[r]; ok && sup.Active(now) {
		return ReasonSuppressedBounce
	}
	if st.RequireConsent && !(hasOwn && own.Preference == Allow) && !(!hasOwn && hasDomain && domain.Preference == Allow) {
		return ReasonNoConsent
	}
	return ""
}
