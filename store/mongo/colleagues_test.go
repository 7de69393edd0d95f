package mongo

import (
	"testing"
	"time"

	"github.com/engage-email/engage/recommend"
)

// TestColleaguesPipelineGolden pins the mailbox sync's candidate query like TestBuildersGolden does
// the others: first page and a later page, configured domains and senders' domains.
func TestColleaguesPipelineGolden(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	q := recommend.ColleagueQuery{Since: at.Add(-30 * 24 * time.Hour), StaleBefore: at.Add(-7 * 24 * time.Hour), Limit: 50}
	later := q
	later.After = "bob@contoso.com"
	for _, tc := range []struct {
		name    string
		q       recommend.ColleagueQuery
		domains []string
	}{
		{"colleagues-first-page", q, []string{"contoso.com"}},
		{"colleagues-later-page", later, []string{"contoso.com", "contoso.fr"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			golden(t, tc.name, colleaguesPipeline(tc.q, tc.domains))
		})
	}
}
