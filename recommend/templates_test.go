package recommend

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
)

func rankingOf(t *testing.T, rs []TemplateRanking, id string) TemplateRanking {
	t.Helper()
	for _, r := range rs {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("template %q missing from %+v", id, rs)
	return TemplateRanking{}
}

func TestRankTemplates(t *testing.T) {
	tests := []struct {
		name        string
		stats       []TemplateStats
		recommended map[string]bool
		why         map[string]string // a fragment of the explanation
	}{
		{
			name: "small samples never recommended, however good they look",
			stats: []TemplateStats{
				{ID: "lucky", Emails: 8, HumanOpened: 8, Replied: 8, Won: 5},
				{ID: "plain", Emails: 400, HumanOpened: 120, Replied: 20, Won: 2, Lost: 30},
			},
			recommended: map[string]bool{"lucky": false, "plain": false},
			why:         map[string]string{"lucky": "too few emails to judge (8 sent, 30 needed)"},
		},
		{
			name: "clearly better reply rate is recommended",
			stats: []TemplateStats{
				{ID: "intro-a", Emails: 200, HumanOpened: 120, Replied: 60},
				{ID: "intro-b", Emails: 200, HumanOpened: 110, Replied: 20},
				{ID: "intro-c", Emails: 150, HumanOpened: 80, Replied: 12},
			},
			recommended: map[string]bool{"intro-a": true, "intro-b": false, "intro-c": false},
			why:         map[string]string{"intro-a": "reply rate 30%", "intro-b": "not clearly better"},
		},
		{
			name: "a small edge is not confidence",
			stats: []TemplateStats{
				{ID: "x", Emails: 100, HumanOpened: 50, Replied: 11},
				{ID: "y", Emails: 100, HumanOpened: 48, Replied: 9},
			},
			recommended: map[string]bool{"x": false, "y": false},
		},
		{
			name: "win rate counts first and vetoes a better reply rate",
			stats: []TemplateStats{
				{ID: "chatty", Emails: 300, HumanOpened: 200, Replied: 120, Won: 5, Lost: 60},
				{ID: "closer", Emails: 300, HumanOpened: 150, Replied: 40, Won: 40, Lost: 20},
			},
			recommended: map[string]bool{"chatty": false, "closer": true},
			why:         map[string]string{"chatty": "confidently worse win rate", "closer": "win rate"},
		},
		{
			name:        "a lone template has nothing to beat",
			stats:       []TemplateStats{{ID: "only", Emails: 1000, HumanOpened: 900, Replied: 500}},
			recommended: map[string]bool{"only": false},
			why:         map[string]string{"only": "no other template"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := RankTemplates(tc.stats)
			if err != nil {
				t.Fatalf("RankTemplates: %v", err)
			}
			if len(got) != len(tc.stats) {
				t.Fatalf("got %d rankings for %d templates", len(got), len(tc.stats))
			}
			for id, want := range tc.recommended {
				if r := rankingOf(t, got, id); r.Recommended != want {
					t.Errorf("%s recommended = %v, want %v (%s)", id, r.Recommended, want, r.Why)
				}
			}
			for id, frag := range tc.why {
				if r := rankingOf(t, got, id); !strings.Contains(r.Why, frag) {
					t.Errorf("%s why = %q, want it to contain %q", id, r.Why, frag)
				}
			}
			for i := 1; i < len(got); i++ {
				if got[i].Recommended && !got[i-1].Recommended {
					t.Errorf("recommended %s ranked after %s", got[i].ID, got[i-1].ID)
				}
			}
		})
	}
}

func TestNewRate(t *testing.T) {
	tests := []struct {
		name            string
		k, n            int
		mean, low, high float64
	}{
		{"nothing yet is the uniform prior", 0, 0, 0.5, 0.05, 0.95},
		{"all of one", 1, 1, 2.0 / 3, math.Sqrt(0.05), math.Sqrt(0.95)}, // Beta(2,1): CDF x^2
		{"none of one", 0, 1, 1.0 / 3, 1 - math.Sqrt(0.95), 1 - math.Sqrt(0.05)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRate(tc.k, tc.n)
			if math.Abs(r.Mean-tc.mean) > 1e-12 || math.Abs(r.Low-tc.low) > 1e-9 || math.Abs(r.High-tc.high) > 1e-9 || r.N != tc.n {
				t.Errorf("NewRate(%d, %d) = %+v, want mean %v in [%v, %v]", tc.k, tc.n, r, tc.mean, tc.low, tc.high)
			}
		})
	}
}

func TestRankTemplatesBadInput(t *testing.T) {
	tests := []struct {
		name  string
		stats []TemplateStats
	}{
		{"no id", []TemplateStats{{Emails: 3}}},
		{"duplicate", []TemplateStats{{ID: "a", Emails: 3}, {ID: "a", Emails: 4}}},
		{"negative", []TemplateStats{{ID: "a", Emails: -1}}},
		{"more opens than emails", []TemplateStats{{ID: "a", Emails: 3, HumanOpened: 4}}},
		{"more outcomes than emails", []TemplateStats{{ID: "a", Emails: 3, Won: 2, Lost: 2}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := RankTemplates(tc.stats); !errors.Is(err, ErrBadInput) {
				t.Errorf("RankTemplates error = %v, want ErrBadInput", err)
			}
		})
	}
}

// categoryStore is a backend's answer for one category.
type categoryStore map[string][]TemplateStats

func (c categoryStore) TemplateStats(_ context.Context, category string) ([]TemplateStats, error) {
	return c[category], nil
}

func TestRankCategory(t *testing.T) {
	st := categoryStore{"intro": {{ID: "a", Emails: 100, Replied: 40}, {ID: "b", Emails: 100, Replied: 5}}}
	got, err := RankCategory(context.Background(), st, "intro")
	if err != nil || len(got) != 2 || got[0].ID != "a" || !got[0].Recommended {
		t.Fatalf("RankCategory = %+v, %v; want a recommended first", got, err)
	}
	if empty, err := RankCategory(context.Background(), st, "none"); err != nil || len(empty) != 0 {
		t.Errorf("RankCategory of an empty category = %+v, %v", empty, err)
	}
}

func TestParseOutcome(t *testing.T) {
	tests := []struct {
		in   string
		want Outcome
		ok   bool
	}{{"WON", OutcomeWon, true}, {" lost ", OutcomeLost, true}, {"maybe", "", false}, {"", "", false}}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseOutcome(tc.in)
			if got != tc.want || (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrBadInput)) {
				t.Errorf("ParseOutcome(%q) = %q, %v", tc.in, got, err)
			}
		})
	}
}

func FuzzRankTemplates(f *testing.F) {
	f.Add(40, 30, 10, 3, 2, 500, 100, 20, 1, 9)
	f.Add(0, 0, 0, 0, 0, 1, 1, 1, 0, 0)
	f.Fuzz(func(t *testing.T, e1, o1, r1, w1, l1, e2, o2, r2, w2, l2 int) {
		stats := []TemplateStats{
			{ID: "a", Emails: e1 % 100000, HumanOpened: o1 % 100000, Replied: r1 % 100000, Won: w1 % 100000, Lost: l1 % 100000},
			{ID: "b", Emails: e2 % 100000, HumanOpened: o2 % 100000, Replied: r2 % 100000, Won: w2 % 100000, Lost: l2 % 100000},
		}
		got, err := RankTemplates(stats)
		if err != nil {
			if !errors.Is(err, ErrBadInput) {
				t.Fatalf("error %v is not ErrBadInput", err)
			}
			return
		}
		for _, r := range got {
			for _, rate := range []Rate{r.OpenRate, r.ReplyRate, r.WinRate} {
				if !(0 <= rate.Low && rate.Low <= rate.Mean && rate.Mean <= rate.High && rate.High <= 1) {
					t.Fatalf("%s: rate %+v is not an ordered interval in [0, 1]", r.ID, rate)
				}
			}
			if r.Recommended && r.Emails < MinEmails && r.WinRate.N < MinOutcomes {
				t.Fatalf("%s recommended on %d emails", r.ID, r.Emails)
			}
		}
	})
}
