package recommend

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
)

// Template ranking thresholds: a template is recommended only on enough evidence and only when it is
// confidently better than the rest of its category.
const (
	MinEmails     = 30   // sent emails before open and reply rates can recommend a template
	MinOutcomes   = 10   // won or lost deals before the win rate can recommend a template
	Confidence    = 0.95 // posterior probability of being better that a recommendation needs
	CredibleLevel = 0.90 // mass of the equal-tailed credible interval reported with each rate
)

// Outcome is the result a salesperson records for a followed message's deal, feeding the win rate.
type Outcome string

// The outcomes recordOutcome accepts.
const (
	OutcomeWon  Outcome = "WON"
	OutcomeLost Outcome = "LOST"
)

// ParseOutcome accepts WON or LOST in any case, so callers get one clear error for anything else.
func ParseOutcome(s string) (Outcome, error) {
	switch o := Outcome(strings.ToUpper(strings.TrimSpace(s))); o {
	case OutcomeWon, OutcomeLost:
		return o, nil
	}
	return "", fmt.Errorf("outcome %q is neither WON nor LOST: %w", s, ErrBadInput)
}

// TemplateStats are one template's counts as a backend aggregates them: human opens only (no machine
// opens), real replies only (no automatic replies), and recorded outcomes.
type TemplateStats struct {
	ID                           string
	Emails, HumanOpened, Replied int
	Won, Lost                    int
}

// TemplateStore is what template ranking needs from a backend.
type TemplateStore interface {
	// TemplateStats returns the counts of every template in category over its followed messages that
	// went out, as Engagement's Sent counts them; none is an empty slice.
	TemplateStats(ctx context.Context, category string) ([]TemplateStats, error)
}

// Rate is a proportion with its uncertainty, so a 2-of-3 template is not mistaken for a 66% winner.
type Rate struct {
	Mean, Low, High float64 // posterior mean and equal-tailed CredibleLevel interval (uniform prior)
	N               int     // trials behind it: emails, or decided outcomes for the win rate
}

// TemplateRanking is a template's record and whether it is worth recommending, and why.
type TemplateRanking struct {
	ID                           string
	Emails                       int
	OpenRate, ReplyRate, WinRate Rate
	Recommended                  bool
	Why                          string
}

// RankCategory reads a category's counts and ranks them, as the templateRecommendations query does.
func RankCategory(ctx context.Context, st TemplateStore, category string) ([]TemplateRanking, error) {
	stats, err := st.TemplateStats(ctx, category)
	if err != nil {
		return nil, fmt.Errorf("rank templates of %q: read stats: %w", category, err)
	}
	out, err := RankTemplates(stats)
	if err != nil {
		return nil, fmt.Errorf("rank templates of %q: %w", category, err)
	}
	return out, nil
}

// NewRate is the Beta posterior of successes in trials under a uniform prior.
func NewRate(successes, trials int) Rate {
	a, b := float64(successes)+1, float64(trials-successes)+1
	tail := (1 - CredibleLevel) / 2
	return Rate{Mean: a / (a + b), Low: betaQuantile(tail, a, b), High: betaQuantile(1-tail, a, b), N: trials}
}

// metric is one rate the ranking can recommend on, in priority order.
type metric struct {
	name    string
	minimum int
	counts  func(TemplateStats) (successes, trials int)
}

var metrics = [...]metric{
	{"win rate", MinOutcomes, func(s TemplateStats) (int, int) { return s.Won, s.Won + s.Lost }},
	{"reply rate", MinEmails, func(s TemplateStats) (int, int) { return s.Replied, s.Emails }},
	{"open rate", MinEmails, func(s TemplateStats) (int, int) { return s.HumanOpened, s.Emails }},
}

// RankTemplates ranks one category's templates: recommended first, then by reply rate. A template is
// recommended when, on a metric with enough samples, it beats the pooled rest of the category with
// probability Confidence, and it is not confidently worse on a more important metric.
func RankTemplates(stats []TemplateStats) ([]TemplateRanking, error) {
	if err := checkStats(stats); err != nil {
		return nil, err
	}
	var total TemplateStats
	for _, s := range stats {
		total.Emails += s.Emails
		total.HumanOpened += s.HumanOpened
		total.Replied += s.Replied
		total.Won += s.Won
		total.Lost += s.Lost
	}
	out := make([]TemplateRanking, len(stats))
	for i, s := range stats {
		rest := TemplateStats{
			Emails: total.Emails - s.Emails, HumanOpened: total.HumanOpened - s.HumanOpened,
			Replied: total.Replied - s.Replied, Won: total.Won - s.Won, Lost: total.Lost - s.Lost,
		}
		r := TemplateRanking{
			ID: s.ID, Emails: s.Emails,
			WinRate:   NewRate(s.Won, s.Won+s.Lost),
			ReplyRate: NewRate(s.Replied, s.Emails),
			OpenRate:  NewRate(s.HumanOpened, s.Emails),
		}
		r.Recommended, r.Why = judge(s, rest, len(stats))
		out[i] = r
	}
	slices.SortStableFunc(out, func(a, b TemplateRanking) int {
		if a.Recommended != b.Recommended {
			if a.Recommended {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(b.ReplyRate.Mean, a.ReplyRate.Mean), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// judge decides one template against the rest of its category and says why in one line.
func judge(s, rest TemplateStats, templates int) (bool, string) {
	if templates < 2 {
		return false, "no other template in this category to compare with"
	}
	short := ""
	for i, m := range metrics {
		k, n := m.counts(s)
		rk, rn := m.counts(rest)
		if n < m.minimum || rn < m.minimum {
			switch {
			case short != "" || i == 0:
			case n < m.minimum:
				short = fmt.Sprintf("too few emails to judge (%d sent, %d needed)", n, m.minimum)
			default:
				short = fmt.Sprintf("too few emails from the rest of the category to compare with (%d)", rn)
			}
			continue
		}
		better := probGreater(float64(k+1), float64(n-k+1), float64(rk+1), float64(rn-rk+1))
		if better < Confidence {
			continue
		}
		for _, hi := range metrics[:i] {
			hk, hn := hi.counts(s)
			hrk, hrn := hi.counts(rest)
			if hn >= hi.minimum && hrn >= hi.minimum &&
				probGreater(float64(hrk+1), float64(hrn-hrk+1), float64(hk+1), float64(hn-hk+1)) >= Confidence {
				return false, fmt.Sprintf("better %s but confidently worse %s than the rest of the category", m.name, hi.name)
			}
		}
		mine, theirs := NewRate(k, n), NewRate(rk, rn)
		return true, fmt.Sprintf("%s %.0f%% (%.0f%% credible %.0f-%.0f%%, %d) beats the rest of the category's %.0f%% with %.0f%% certainty",
			m.name, 100*mine.Mean, 100*CredibleLevel, 100*mine.Low, 100*mine.High, n, 100*theirs.Mean, 100*better)
	}
	if short != "" {
		return false, short
	}
	return false, "not clearly better than the rest of the category"
}

func checkStats(stats []TemplateStats) error {
	seen := make(map[string]bool, len(stats))
	for _, s := range stats {
		switch {
		case s.ID == "":
			return fmt.Errorf("rank templates: a template has no id: %w", ErrBadInput)
		case seen[s.ID]:
			return fmt.Errorf("rank templates: template %q appears twice: %w", s.ID, ErrBadInput)
		case s.Emails < 0 || s.HumanOpened < 0 || s.Replied < 0 || s.Won < 0 || s.Lost < 0:
			return fmt.Errorf("rank templates: template %q has a negative count: %w", s.ID, ErrBadInput)
		case s.HumanOpened > s.Emails || s.Replied > s.Emails || s.Won+s.Lost > s.Emails:
			return fmt.Errorf("rank templates: template %q counts more opens, replies or outcomes than emails: %w", s.ID, ErrBadInput)
		}
		seen[s.ID] = true
	}
	return nil
}
