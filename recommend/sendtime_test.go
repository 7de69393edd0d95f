package recommend

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

func zone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load zone %s: %v", name, err)
	}
	return loc
}

func service(t testing.TB, st Store, explore float64) *SendTimes {
	t.Helper()
	s, err := NewSendTimes(st, rand.New(rand.NewPCG(7, 11)), explore)
	if err != nil {
		t.Fatalf("NewSendTimes: %v", err)
	}
	return s
}

// dynamicsNext is the Dynamics rule written out: the first whole hour in 8:00-17:00 Mon-Fri.
func dynamicsNext(after time.Time, loc *time.Location) time.Time {
	at := after.Truncate(time.Hour)
	if at.Before(after) {
		at = at.Add(time.Hour)
	}
	for {
		l := at.In(loc)
		if l.Weekday() != time.Saturday && l.Weekday() != time.Sunday && l.Hour() >= 8 && l.Hour() < 17 {
			return at
		}
		at = at.Add(time.Hour)
	}
}

func TestColdStartIsDynamicsRule(t *testing.T) {
	tests := []struct {
		name, zone string
		profile    bool
		after      string // in the recipient's zone
	}{
		{"mid-morning Berlin", "Europe/Berlin", true, "2025-03-04 10:20"},
		{"Friday evening New York", "America/New_York", true, "2025-03-07 18:00"},
		{"Saturday Tokyo", "Asia/Tokyo", true, "2025-03-08 12:00"},
		{"unknown zone falls back to the sender's", "Europe/London", false, "2025-03-05 16:30"},
		{"across the clock change", "Europe/Berlin", true, "2025-03-28 19:00"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			loc := zone(t, tc.zone)
			st := newHistStore()
			if tc.profile {
				st.profiles["ana@contoso.example"] = Profile{Recipient: "ana@contoso.example", Location: loc, Source: SourceProfile}
			}
			after, err := time.ParseInLocation("2006-01-02 15:04", tc.after, loc)
			if err != nil {
				t.Fatal(err)
			}
			sender := zone(t, "America/Los_Angeles")
			if !tc.profile {
				sender = loc
			}
			slots, err := service(t, st, DefaultExplore).Recommend(context.Background(), "me@org.example",
				[]string{"Ana@Contoso.example"}, after, 5, sender)
			if err != nil {
				t.Fatalf("Recommend: %v", err)
			}
			if len(slots) != 5 {
				t.Fatalf("got %d slots, want 5", len(slots))
			}
			want := dynamicsNext(after, loc)
			for i, s := range slots {
				if !s.At.Equal(want) {
					t.Errorf("slot %d at %s, want %s (the Dynamics rule)", i, s.At.In(loc), want.In(loc))
				}
				if s.Exploring || !strings.Contains(s.Explanation, "working hours") {
					t.Errorf("slot %d: exploring %v, explanation %q", i, s.Exploring, s.Explanation)
				}
				want = dynamicsNext(want.Add(time.Minute), loc)
			}
		})
	}
}

func TestLearnsWhenARecipientReads(t *testing.T) {
	berlin := zone(t, "Europe/Berlin")
	tests := []struct {
		name     string
		weeks    int
		readHour int
		want     []int // acceptable local hours of the best slot
	}{
		// Reads come at 20:20: a delivery at 20:00 or in the quiet hour before it tops the inbox then.
		{"evening reader with enough data", 6, 20, []int{19, 20}},
		// Overnight little mail arrives, so delivering an hour early still tops the inbox at the read.
		{"early reader with enough data", 6, 6, []int{5, 6}},
		// A recipient's own hours outweigh the domain's after a fraction of one engagement (dayKappa):
		// in the evaluation that pays for the occasional wrong turn, which exploration then corrects.
		{"a single evening read already moves the slot", 0, 20, []int{19, 20}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := newHistStore()
			st.profiles["eve@fabrikam.example"] = Profile{Location: berlin, Source: SourceMailbox}
			// Colleagues elsewhere read in the morning; the organisation learns office hours.
			for i := range 30 {
				st.habitually(fmt.Sprintf("c%d@northwind.example", i), berlin, 6, 14, 9)
			}
			if tc.weeks == 0 {
				st.record("eve@fabrikam.example", berlin, time.Date(2025, 1, 6, 10, 0, 0, 0, berlin), time.Date(2025, 1, 6, 20, 30, 0, 0, berlin))
			} else {
				st.habitually("eve@fabrikam.example", berlin, tc.weeks, 10, tc.readHour)
			}
			after := time.Date(2025, 3, 4, 11, 0, 0, 0, berlin)
			slots, err := service(t, st, 0).Recommend(context.Background(), "me@org.example", []string{"eve@fabrikam.example"}, after, 3, berlin)
			if err != nil {
				t.Fatalf("Recommend: %v", err)
			}
			got := slots[0].At.In(berlin).Hour()
			ok := false
			for _, h := range tc.want {
				ok = ok || got == h
			}
			if !ok {
				t.Errorf("best slot %s (%s), want one of hours %v", slots[0].At.In(berlin), slots[0].Explanation, tc.want)
			}
		})
	}
}

func TestCombinesRecipientsInDifferentZones(t *testing.T) {
	berlin, tokyo, ny := zone(t, "Europe/Berlin"), zone(t, "Asia/Tokyo"), zone(t, "America/New_York")
	t.Run("cold start: the hour both are at work", func(t *testing.T) {
		st := newHistStore()
		st.profiles["a@x.example"] = Profile{Location: berlin, Source: SourceProfile}
		st.profiles["b@y.example"] = Profile{Location: tokyo, Source: SourceProfile}
		after := time.Date(2025, 2, 4, 12, 0, 0, 0, time.UTC)
		slots, err := service(t, st, 0).Recommend(context.Background(), "", []string{"a@x.example", "b@y.example"}, after, 2, ny)
		if err != nil {
			t.Fatalf("Recommend: %v", err)
		}
		for _, s := range slots {
			if s.At.Hour() != 7 || s.Score != 1 { // 08:00 Berlin is 16:00 Tokyo
				t.Errorf("slot %s score %v, want 07:00 UTC for both: %s", s.At, s.Score, s.Explanation)
			}
		}
	})
	t.Run("learned: the hour both read", func(t *testing.T) {
		st := newHistStore()
		st.profiles["a@x.example"] = Profile{Location: berlin, Source: SourceProfile}
		st.profiles["b@y.example"] = Profile{Location: ny, Source: SourceProfile}
		st.habitually("a@x.example", berlin, 6, 9, 20)  // 19:00 UTC in winter
		st.habitually("b@y.example", ny, 6, 9, 14)      // 19:00 UTC in winter
		st.habitually("c@z.example", berlin, 6, 14, 10) // the organisation reads mornings
		after := time.Date(2025, 2, 4, 8, 0, 0, 0, time.UTC)
		slots, err := service(t, st, 0).Recommend(context.Background(), "", []string{"a@x.example", "b@y.example"}, after, 1, ny)
		if err != nil {
			t.Fatalf("Recommend: %v", err)
		}
		if h := slots[0].At.Hour(); h != 19 || !strings.Contains(slots[0].Explanation, "Good for 2 of 2") {
			t.Errorf("best slot %s: %s; want 19:00 UTC, good for both", slots[0].At, slots[0].Explanation)
		}
	})
}

func TestExplorationShare(t *testing.T) {
	berlin := zone(t, "Europe/Berlin")
	st := newHistStore()
	st.profiles["eve@f.example"] = Profile{Location: berlin, Source: SourceProfile}
	st.habitually("eve@f.example", berlin, 2, 10, 20)
	tests := []struct {
		name    string
		explore float64
		store   *histStore
	}{
		{"never", 0, st},
		{"default", DefaultExplore, st},
		{"a third", 0.33, st},
		{"cold start never explores", 1, newHistStore()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := service(t, tc.store, tc.explore)
			const calls = 600
			explored, moved := 0, 0
			after := time.Date(2025, 3, 4, 11, 0, 0, 0, berlin)
			best, _ := service(t, tc.store, 0).Recommend(context.Background(), "", []string{"eve@f.example"}, after, 1, berlin)
			for range calls {
				slots, err := s.Recommend(context.Background(), "", []string{"eve@f.example"}, after, 1, berlin)
				if err != nil {
					t.Fatalf("Recommend: %v", err)
				}
				if slots[0].Exploring {
					explored++
					if !strings.HasPrefix(slots[0].Explanation, "Exploring") {
						t.Errorf("exploring slot explained as %q", slots[0].Explanation)
					}
				}
				if !slots[0].At.Equal(best[0].At) {
					moved++
				}
			}
			want := tc.explore
			if tc.store != st {
				want = 0
			}
			if share := float64(explored) / calls; share < want-0.05 || share > want+0.05 {
				t.Errorf("explored %.3f of answers, want %.2f", share, want)
			}
			if moved > explored {
				t.Errorf("%d answers left the best slot but only %d explored", moved, explored)
			}
			if want > 0.2 && moved == 0 {
				t.Errorf("exploration never tried another slot")
			}
		})
	}
}

func TestRecommendBadInput(t *testing.T) {
	many := make([]string, MaxRecipients+1)
	for i := range many {
		many[i] = fmt.Sprintf("r%d@x.example", i)
	}
	tests := []struct {
		name       string
		recipients []string
		count      int
		wantSlots  int // when no error
		wantErr    bool
	}{
		{"no recipients", nil, 3, 0, true},
		{"too many recipients", many, 3, 0, true},
		{"count above the cap", []string{"a@x.example"}, MaxCount + 1, 0, true},
		{"negative count", []string{"a@x.example"}, -1, 0, true},
		{"not an address", []string{"a@x.example", "nobody"}, 3, 0, true},
		{"empty domain", []string{"a@"}, 3, 0, true},
		{"unknown recipient is a cold start", []string{"who@nowhere.example"}, 2, 2, false},
		{"zero count means the default", []string{"a@x.example"}, 0, DefaultCount, false},
		{"the cap is allowed", []string{"a@x.example"}, MaxCount, MaxCount, false},
		{"duplicates collapse under the limit", append(many[:MaxRecipients:MaxRecipients], "R0@X.example"), 1, 1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			slots, err := service(t, newHistStore(), 0).Recommend(context.Background(), "", tc.recipients, time.Time{}, tc.count, nil)
			if tc.wantErr {
				if !errors.Is(err, ErrBadInput) {
					t.Errorf("error = %v, want ErrBadInput", err)
				}
				return
			}
			if err != nil || len(slots) != tc.wantSlots {
				t.Errorf("got %d slots, %v; want %d", len(slots), err, tc.wantSlots)
			}
		})
	}
	t.Run("constructor", func(t *testing.T) {
		for _, explore := range []float64{-0.1, 1.5} {
			if _, err := NewSendTimes(newHistStore(), rand.New(rand.NewPCG(1, 1)), explore); !errors.Is(err, ErrBadInput) {
				t.Errorf("explore %v: error %v, want ErrBadInput", explore, err)
			}
		}
		if _, err := NewSendTimes(nil, rand.New(rand.NewPCG(1, 1)), 0); !errors.Is(err, ErrBadInput) {
			t.Errorf("nil store: error %v, want ErrBadInput", err)
		}
	})
	t.Run("store failure is wrapped", func(t *testing.T) {
		down := errors.New("database is down")
		st := newHistStore()
		st.err = down
		_, err := service(t, st, 0).Recommend(context.Background(), "", []string{"a@x.example"}, time.Time{}, 1, nil)
		if !errors.Is(err, down) || errors.Is(err, ErrBadInput) {
			t.Errorf("error = %v, want the store's error", err)
		}
	})
}

func TestCredit(t *testing.T) {
	tests := []struct {
		delay    time.Duration
		min, max float64
	}{
		{-time.Minute, creditFloor, creditFloor},
		{0, creditFloor, creditFloor},
		{5 * time.Minute, 0.25, 0.35},
		{time.Hour, 0.7, 0.75},
		{6 * time.Hour, 0.99, 1},
	}
	for _, tc := range tests {
		t.Run(tc.delay.String(), func(t *testing.T) {
			if got := Credit(tc.delay); got < tc.min || got > tc.max {
				t.Errorf("Credit(%s) = %v, want in [%v, %v]", tc.delay, got, tc.min, tc.max)
			}
		})
	}
}

func TestInfersZoneFromEngagement(t *testing.T) {
	tokyo, london := zone(t, "Asia/Tokyo"), zone(t, "Europe/London")
	st := newHistStore()
	for i := range 20 {
		st.habitually(fmt.Sprintf("c%d@org-customers.example", i), london, 4, 15, 9)
	}
	st.habitually("kenji@tokyo.example", tokyo, 4, 15, 9) // no profile: only their engagement says Tokyo
	after := time.Date(2025, 3, 4, 12, 0, 0, 0, time.UTC)
	slots, err := service(t, st, 0).Recommend(context.Background(), "", []string{"kenji@tokyo.example"}, after, 1, london)
	if err != nil {
		t.Fatalf("Recommend: %v", err)
	}
	if l := slots[0].At.In(tokyo); !strings.Contains(slots[0].Explanation, "UTC+09:00 (inferred)") || l.Hour() < 6 || l.Hour() > 9 {
		t.Errorf("best slot %s Tokyo time: %s; want a Tokyo morning from an inferred zone", l, slots[0].Explanation)
	}
}

func TestExplanationsGolden(t *testing.T) {
	berlin, ny := zone(t, "Europe/Berlin"), zone(t, "America/New_York")
	st := newHistStore()
	st.profiles["eve@f.example"] = Profile{Location: berlin, Source: SourceMailbox}
	st.profiles["bob@n.example"] = Profile{Location: ny, Source: SourceProfile}
	st.habitually("eve@f.example", berlin, 6, 10, 20)
	st.habitually("bob@n.example", ny, 6, 9, 14)
	after := time.Date(2025, 2, 4, 8, 30, 0, 0, time.UTC)
	var b strings.Builder
	for _, q := range [][]string{
		{"eve@f.example"},
		{"new@f.example"},
		{"new@unheard.example"},
		{"eve@f.example", "bob@n.example"},
		{"eve@f.example", "bob@n.example", "new@f.example", "x@unheard.example"},
	} {
		slots, err := service(t, st, 0).Recommend(context.Background(), "", q, after, 2, berlin)
		if err != nil {
			t.Fatalf("Recommend %v: %v", q, err)
		}
		fmt.Fprintf(&b, "%s\n", strings.Join(q, ", "))
		for _, s := range slots {
			fmt.Fprintf(&b, "  %s %.2f %s\n", s.At.Format(time.RFC3339), s.Score, s.Explanation)
		}
	}
	cold, err := service(t, newHistStore(), 0).Recommend(context.Background(), "", []string{"a@x.example", "b@y.example"}, after, 1, berlin)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "cold start, two recipients\n  %s %.2f %s\n", cold[0].At.Format(time.RFC3339), cold[0].Score, cold[0].Explanation)
	golden(t, "explanations.golden", b.String())
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run with -update if intended):\n%s", path, got)
	}
}
