package recommend

import (
	"context"
	"fmt"
	"math"
	"strings"
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

// TestSlotsInZonesOffTheHour asks for recipients whose zone is half or three quarters of an hour off
// UTC and who read at 20:20 their time: the slot is on their own hour and not after the read.
func TestSlotsInZonesOffTheHour(t *testing.T) {
	tests := []struct {
		name     string
		zones    []string // of the recipients, who all read at 20:20 local; the first sets the grid
		wantZone string   // whose clock the best slot is judged on
		want     string   // acceptable local times of the best slot
	}{
		{"Berlin", []string{"Europe/Berlin"}, "Europe/Berlin", "20:00"},
		{"Kolkata", []string{"Asia/Kolkata"}, "Asia/Kolkata", "20:00"},
		{"St. John's", []string{"America/St_Johns"}, "America/St_Johns", "20:00"},
		{"Kathmandu", []string{"Asia/Kathmandu"}, "Asia/Kathmandu", "20:00"},
		{"Adelaide", []string{"Australia/Adelaide"}, "Australia/Adelaide", "20:00"},
		// The grid is Berlin's; the reader in St. John's is credited only with reads after the slot.
		{"St. John's reader on Berlin's grid", []string{"Europe/Berlin", "America/St_Johns"}, "America/St_Johns", "19:30"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := newHistStore()
			var addrs []string
			for i, name := range tc.zones {
				loc := zone(t, name)
				addr := fmt.Sprintf("r%d@fabrikam.example", i)
				addrs = append(addrs, addr)
				st.profiles[addr] = Profile{Location: loc, Source: SourceProfile}
				if name == tc.wantZone {
					st.habitually(addr, loc, 6, 10, 20)
				}
			}
			loc := zone(t, tc.wantZone)
			after := time.Date(2025, 3, 4, 11, 0, 0, 0, loc)
			slots, err := service(t, st, 0).Recommend(context.Background(), "", addrs, after, 1, time.UTC)
			if err != nil {
				t.Fatalf("Recommend: %v", err)
			}
			if got := slots[0].At.In(loc).Format("15:04"); got != tc.want {
				t.Errorf("best slot %s local (%s), want %s: on the grid and before the habitual read at 20:20", got, slots[0].Explanation, tc.want)
			}
		})
	}
}

// TestKeepsTheSenderZoneOffTheHour asks for a recipient with no zone on record who reads like the
// sender's colleagues in the sender's zone: no whole-hour offset explains them better, so none is
// inferred.
func TestKeepsTheSenderZoneOffTheHour(t *testing.T) {
	for _, name := range []string{"Europe/Berlin", "Asia/Kolkata", "America/St_Johns", "Asia/Kathmandu", "Australia/Adelaide"} {
		t.Run(name, func(t *testing.T) {
			loc := zone(t, name)
			st := newHistStore()
			for i := range 10 {
				addr := fmt.Sprintf("c%d@fabrikam.example", i)
				st.profiles[addr] = Profile{Location: loc, Source: SourceProfile}
				st.habitually(addr, loc, 4, 15, 9)
			}
			st.habitually("new@fabrikam.example", loc, 4, 15, 9)
			after := time.Date(2025, 3, 4, 11, 0, 0, 0, loc)
			slots, err := service(t, st, 0).Recommend(context.Background(), "", []string{"new@fabrikam.example"}, after, 1, loc)
			if err != nil {
				t.Fatalf("Recommend: %v", err)
			}
			if !strings.Contains(slots[0].Explanation, name+" (your zone)") {
				t.Errorf("best slot %s: %s; want the sender's zone, not an inferred offset", slots[0].At.In(loc).Format("15:04"), slots[0].Explanation)
			}
		})
	}
}
