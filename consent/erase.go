package consent

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/engage-email/engage/auth"
	"github.com/engage-email/engage/followed"
)

// Eraser is a feature's store seen from erasure: it forgets an address and says what it holds about
// one. Each feature holding recipients' data (followed messages, alerts) gives one to the Service.
type Eraser interface {
	// ForgetRecipient removes or anonymises every trace of email and counts what it changed. It is
	// idempotent, so an erasure cut short is finished by running it again.
	ForgetRecipient(ctx context.Context, email string) ([]Count, error)
	// RecipientData returns every record that names email.
	RecipientData(ctx context.Context, email string) ([]Record, error)
}

// Count is how many items of one kind an erasure removed or anonymised.
type Count struct {
	What string // e.g. "events", "renders"
	N    int
}

// Record is one item held about a person, in a form any feature can give.
type Record struct {
	Source string // the feature, e.g. "followed", "consent"
	Kind   string // e.g. "recipient", "event", "preference"
	ID     string
	At     time.Time
	Fields map[string]string
}

// Erasure is what forgetting an address did.
type Erasure struct {
	Email  string
	Counts []Count
}

// ForgetRecipient erases an address from every feature's store (admins). A DO_NOT_ALLOW in force is
// kept as a hash, so that the person's objection outlives the erasure of their address; so is a later
// choice that withdrew an objection kept so before.
func (s *Service) ForgetRecipient(ctx context.Context, who auth.Identity, email string) (Erasure, error) {
	if err := requireAdmin(who, "forget recipient"); err != nil {
		return Erasure{}, err
	}
	e, err := auth.NormalizeEmail(email)
	if err != nil {
		return Erasure{}, fmt.Errorf("%w: %s", followed.ErrBadInput, err)
	}
	erased := ErasedTarget(e)
	latest, err := s.store.LatestPreferences(ctx, []string{e, erased})
	if err != nil {
		return Erasure{}, fmt.Errorf("consent: forget recipient: %w", err)
	}
	at := s.stamp()
	var keep *Entry
	p, ok := latest[e]
	switch {
	case ok && p.Preference == DoNotAllow:
		keep = &Entry{Target: erased, Preference: DoNotAllow, At: at, By: who.Email, Source: SourceErasure}
	case ok && latest[erased].Preference == DoNotAllow:
		// An objection an earlier erasure kept, since withdrawn: the hash must not bring it back.
		keep = &Entry{Target: erased, Preference: p.Preference, At: at, By: who.Email, Source: SourceErasure}
	}
	out := Erasure{Email: e}
	for _, er := range s.erasers {
		cs, err := er.ForgetRecipient(ctx, e)
		if err != nil {
			return Erasure{}, fmt.Errorf("consent: forget recipient: %w", err)
		}
		out.Counts = append(out.Counts, cs...)
	}
	a := AuditEntry{At: at, Actor: who.Email, Action: ActionForget, Target: erased}
	own, err := s.store.ForgetConsent(ctx, e, erased, keep, a)
	if err != nil {
		return Erasure{}, fmt.Errorf("consent: forget recipient: %w", err)
	}
	out.Counts = append(out.Counts, own...)
	return out, nil
}

// RecipientData returns everything Engage holds about an address (admins), for a subject access request.
func (s *Service) RecipientData(ctx context.Context, who auth.Identity, email string) ([]Record, error) {
	if err := requireAdmin(who, "recipient data"); err != nil {
		return nil, err
	}
	e, err := auth.NormalizeEmail(email)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", followed.ErrBadInput, err)
	}
	var out []Record
	for _, er := range s.erasers {
		rs, err := er.RecipientData(ctx, e)
		if err != nil {
			return nil, fmt.Errorf("consent: recipient data: %w", err)
		}
		out = append(out, rs...)
	}
	hist, err := s.store.PreferenceHistory(ctx, e)
	if err != nil {
		return nil, fmt.Errorf("consent: recipient data: %w", err)
	}
	for _, h := range hist {
		out = append(out, Record{Source: "consent", Kind: "preference", ID: strconv.FormatInt(h.Seq, 10), At: h.At,
			Fields: map[string]string{"target": h.Target, "preference": string(h.Preference), "by": h.By, "source": h.Source, "note": h.Note}})
	}
	sups, err := s.store.Suppressions(ctx, []string{e})
	if err != nil {
		return nil, fmt.Errorf("consent: recipient data: %w", err)
	}
	if sup, ok := sups[e]; ok {
		f := map[string]string{"email": sup.Email, "reason": sup.Reason}
		if !sup.Until.IsZero() {
			f["until"] = sup.Until.Format(time.RFC3339)
		}
		out = append(out, Record{Source: "consent", Kind: "suppression", ID: sup.Email, At: sup.At, Fields: f})
	}
	audit, err := s.store.Audit(ctx, AuditQuery{Target: e, Limit: 10000})
	if err != nil {
		return nil, fmt.Errorf("consent: recipient data: %w", err)
	}
	for _, a := range audit {
		out = append(out, Record{Source: "consent", Kind: "audit", ID: strconv.FormatInt(a.Seq, 10), At: a.At,
			Fields: map[string]string{"actor": a.Actor, "action": a.Action, "target": a.Target, "before": a.Before, "after": a.After}})
	}
	return out, nil
}
