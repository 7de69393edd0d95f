package recommend

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/engage-email/engage/auth"
)

// ErrNotFound marks a template or message that does not exist or is not the caller's to touch, so the
// API answers NOT_FOUND without saying which.
var ErrNotFound = errors.New("not found")

// Limits of a template, so one bad request cannot store an unbounded row.
const (
	MaxTemplateName     = 200
	MaxTemplateCategory = 100
	MaxTemplateSubject  = 998 // the longest line RFC 5322 allows
	MaxTemplateHTML     = 1 << 20
)

// Template is a reusable message salespeople pick from; ranking says which ones work.
type Template struct {
	ID, Owner                     string
	Name, Subject, HTML, Category string
	CreatedAt, UpdatedAt          time.Time
}

// TemplateInput is what a caller may set on a template.
type TemplateInput struct {
	Name, Subject, HTML, Category string
}

// Templates is what template management needs from a backend.
type Templates interface {
	CreateTemplate(ctx context.Context, t Template) error
	// Template returns ErrNotFound when there is no template with id.
	Template(ctx context.Context, id string) (Template, error)
	// UpdateTemplate replaces the caller-settable fields and UpdatedAt; ErrNotFound when absent.
	UpdateTemplate(ctx context.Context, t Template) error
	// DeleteTemplate returns ErrNotFound when absent.
	DeleteTemplate(ctx context.Context, id string) error
	// ListTemplates returns the category's templates by name (every template when category is empty).
	ListTemplates(ctx context.Context, category string) ([]Template, error)
}

// Outcomes is where deal results are kept, feeding the win rate.
type Outcomes interface {
	// RecordOutcome sets the outcome of owner's message; ErrNotFound when owner has no such message.
	RecordOutcome(ctx context.Context, owner, messageID string, o Outcome, at time.Time) error
}

// Catalog manages templates and outcomes under Engage's rules: any rep reads; a template is changed
// by its creator or an admin; an outcome only on one's own message.
type Catalog struct {
	templates Templates
	stats     TemplateStore
	outcomes  Outcomes
	now       func() time.Time
	newID     func(time.Time) string
}

// NewCatalog builds the service; newID names new templates (followed.NewID sorts by time).
func NewCatalog(templates Templates, stats TemplateStore, outcomes Outcomes, now func() time.Time, newID func(time.Time) string) (*Catalog, error) {
	if templates == nil || stats == nil || outcomes == nil || now == nil || newID == nil {
		return nil, fmt.Errorf("new catalog: stores, clock and id source are required: %w", ErrBadInput)
	}
	return &Catalog{templates: templates, stats: stats, outcomes: outcomes, now: now, newID: newID}, nil
}

// Create stores a new template owned by the caller.
func (c *Catalog) Create(ctx context.Context, who auth.Identity, in TemplateInput) (Template, error) {
	in, err := checkTemplate(in)
	if err != nil {
		return Template{}, fmt.Errorf("create template: %w", err)
	}
	now := c.now().UTC()
	t := Template{ID: c.newID(now), Owner: who.Email, Name: in.Name, Subject: in.Subject, HTML: in.HTML,
		Category: in.Category, CreatedAt: now, UpdatedAt: now}
	if err := c.templates.CreateTemplate(ctx, t); err != nil {
		return Template{}, fmt.Errorf("create template: %w", err)
	}
	return t, nil
}

// Update replaces a template's fields, if the caller created it or is an admin.
func (c *Catalog) Update(ctx context.Context, who auth.Identity, id string, in TemplateInput) (Template, error) {
	in, err := checkTemplate(in)
	if err != nil {
		return Template{}, fmt.Errorf("update template %s: %w", id, err)
	}
	t, err := c.editable(ctx, who, id)
	if err != nil {
		return Template{}, fmt.Errorf("update template %s: %w", id, err)
	}
	t.Name, t.Subject, t.HTML, t.Category, t.UpdatedAt = in.Name, in.Subject, in.HTML, in.Category, c.now().UTC()
	if err := c.templates.UpdateTemplate(ctx, t); err != nil {
		return Template{}, fmt.Errorf("update template %s: %w", id, err)
	}
	return t, nil
}

// Delete removes a template, if the caller created it or is an admin; messages keep its id.
func (c *Catalog) Delete(ctx context.Context, who auth.Identity, id string) error {
	if _, err := c.editable(ctx, who, id); err != nil {
		return fmt.Errorf("delete template %s: %w", id, err)
	}
	if err := c.templates.DeleteTemplate(ctx, id); err != nil {
		return fmt.Errorf("delete template %s: %w", id, err)
	}
	return nil
}

// List returns a category's templates (all when category is empty); any signed-in rep may read them.
func (c *Catalog) List(ctx context.Context, category string) ([]Template, error) {
	ts, err := c.templates.ListTemplates(ctx, strings.TrimSpace(category))
	if err != nil {
		return nil, fmt.Errorf("list templates: %w", err)
	}
	return ts, nil
}

// RankedTemplate is a template with its record, as templateRecommendations shows it.
type RankedTemplate struct {
	Template
	TemplateRanking
}

// Recommendations ranks a category's templates (see RankTemplates); any signed-in rep may read them.
func (c *Catalog) Recommendations(ctx context.Context, category string) ([]RankedTemplate, error) {
	category = strings.TrimSpace(category)
	ranks, err := RankCategory(ctx, c.stats, category)
	if err != nil {
		return nil, err
	}
	ts, err := c.templates.ListTemplates(ctx, category)
	if err != nil {
		return nil, fmt.Errorf("rank templates of %q: %w", category, err)
	}
	byID := make(map[string]Template, len(ts))
	for _, t := range ts {
		byID[t.ID] = t
	}
	out := make([]RankedTemplate, 0, len(ranks))
	for _, r := range ranks {
		if t, ok := byID[r.ID]; ok { // a template deleted between the two reads is left out
			out = append(out, RankedTemplate{Template: t, TemplateRanking: r})
		}
	}
	return out, nil
}

// RecordOutcome records a deal's result on one of the caller's own messages.
func (c *Catalog) RecordOutcome(ctx context.Context, who auth.Identity, messageID, outcome string) (Outcome, error) {
	o, err := ParseOutcome(outcome)
	if err != nil {
		return "", fmt.Errorf("record outcome: %w", err)
	}
	if err := c.outcomes.RecordOutcome(ctx, who.Email, messageID, o, c.now().UTC()); err != nil {
		return "", fmt.Errorf("record outcome of %s: %w", messageID, err)
	}
	return o, nil
}

func (c *Catalog) editable(ctx context.Context, who auth.Identity, id string) (Template, error) {
	t, err := c.templates.Template(ctx, id)
	if err != nil {
		return Template{}, err
	}
	if t.Owner != who.Email && !who.Admin {
		return Template{}, fmt.Errorf("recommend: %w", auth.Deny("only its creator or an admin may change a template"))
	}
	return t, nil
}

func checkTemplate(in TemplateInput) (TemplateInput, error) {
	in.Name, in.Category, in.Subject = strings.TrimSpace(in.Name), strings.TrimSpace(in.Category), strings.TrimSpace(in.Subject)
	fields := []struct {
		name, v  string
		max      int
		required bool
	}{
		{"name", in.Name, MaxTemplateName, true},
		{"category", in.Category, MaxTemplateCategory, true},
		{"subject", in.Subject, MaxTemplateSubject, false},
		{"html", in.HTML, MaxTemplateHTML, true},
	}
	for _, f := range fields {
		switch {
		case f.required && strings.TrimSpace(f.v) == "":
			return in, fmt.Errorf("the template's %s is empty: %w", f.name, ErrBadInput)
		case len(f.v) > f.max:
			return in, fmt.Errorf("the template's %s is longer than %d bytes: %w", f.name, f.max, ErrBadInput)
		case !utf8.ValidString(f.v):
			return in, fmt.Errorf("the template's %s is not valid UTF-8: %w", f.name, ErrBadInput)
		}
	}
	return in, nil
}
