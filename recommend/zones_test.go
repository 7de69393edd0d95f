package recommend

import (
	"context"
	"math"
	"testing"
	"time"
)

// TestHabitKeepsLocalHourAcrossDaylightSaving asks for a recipient who reads at 20:20 their time, with
// a history from one season, in another: the best slot stays at their 20:00.
func TestHabitKeepsLocalHourAcrossDaylightSaving(t *testing.T) {
	tests := []struct {
		name  string
		zone  string
		weeks int    // of history from Monday 6 January 2025
		after string // in the recipient's zone
	}{
		{"Berlin winter history, asked in winter", "Europe/Berlin", 6, "2025-03-04 11:00"},
		{"Berlin winter history, asked in summer", "Europe/Berlin", 6, "2025-07-01 11:00"},
		{"Berlin history across the clock change", "Europe/Berlin", 20, "2025-07-01 11:00"},
		{"New York winter history, asked in summer", "America/New_York", 6, "2025-07-01 11:00"},
		{"Sydney summer history, asked in winter", "Australia/Sydney", 6, "2025-07-01 11:00"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			loc := zone(t, tc.zone)
			st := newHistStore()
			st.profiles["eve@fabrikam.example"] = Profile{Location: loc, Source: SourceMailbox}
			st.habitually("eve@fabrikam.example", loc, tc.weeks, 10, 20)
			after, err := time.ParseInLocation("2006-01-02 15:04", tc.after, loc)
			if err != nil {
				t.Fatal(err)
			}
			slots, err := service(t, st, 0).Recommend(context.Background(), "", []string{"eve@fabrikam.example"}, after, 1, time.UTC)
			if err != nil {
				t.Fatalf("Recommend: %v", err)
			}
			if l := slots[0].At.In(loc); l.Hour() != 20 || l.Minute() != 0 || math.Abs(slots[0].Score-4.6) > 0.1 {
				t.Errorf("best slot %s, score %.2f (%s); want 20:00 local, score about 4.6, before the habitual read at 20:20",
					l.Format("Mon 15:04 MST"), slots[0].Score, slots[0].Explanation)
			}
		})
	}
}
