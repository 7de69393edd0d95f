package m365

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/engage-email/engage/m365/m365test"
)

func TestMailboxSettings(t *testing.T) {
	c := newCloud(t, nil)
	workweek := []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}
	dayStart, dayEnd := 8*time.Hour+30*time.Minute, 17*time.Hour+30*time.Minute
	otherZone := m365test.DefaultMailboxSettings("Tokyo Standard Time")
	otherZone["workingHours"].(map[string]any)["timeZone"] = map[string]any{"name": "Pacific Standard Time"}
	otherZone["workingHours"].(map[string]any)["daysOfWeek"] = []any{"sunday", "saturday"}
	tests := []struct {
		name     string
		user     string
		settings map[string]any
		want     MailboxSettings
		wantErr  error // nil: success; errAny: some error
	}{
		{name: "Windows name mapped to IANA", user: "paris@contoso.com", settings: m365test.DefaultMailboxSettings("Romance Standard Time"),
			want: MailboxSettings{TimeZone: "Europe/Paris", WorkingHours: WorkingHours{Days: workweek, Start: dayStart, End: dayEnd, TimeZone: "Europe/Paris"}}},
		{name: "IANA name kept", user: "ny@contoso.com", settings: m365test.DefaultMailboxSettings("America/New_York"),
			want: MailboxSettings{TimeZone: "America/New_York", WorkingHours: WorkingHours{Days: workweek, Start: dayStart, End: dayEnd, TimeZone: "America/New_York"}}},
		{name: "tzone UTC", user: "utc@contoso.com", settings: m365test.DefaultMailboxSettings("tzone://Microsoft/Utc"),
			want: MailboxSettings{TimeZone: "UTC", WorkingHours: WorkingHours{Days: workweek, Start: dayStart, End: dayEnd, TimeZone: "UTC"}}},
		{name: "working hours in their own zone", user: "tokyo@contoso.com", settings: otherZone,
			want: MailboxSettings{TimeZone: "Asia/Tokyo", WorkingHours: WorkingHours{Days: []time.Weekday{time.Sunday, time.Saturday}, Start: dayStart, End: dayEnd, TimeZone: "America/Los_Angeles"}}},
		{name: "no working hours", user: "bare@contoso.com", settings: map[string]any{"timeZone": "India Standard Time"},
			want: MailboxSettings{TimeZone: "Asia/Kolkata", WorkingHours: WorkingHours{TimeZone: "Asia/Kolkata"}}},
		{name: "unknown zone", user: "odd@contoso.com", settings: m365test.DefaultMailboxSettings("Atlantis Standard Time"), wantErr: errAny},
		{name: "no mailbox", user: "ghost@contoso.com", wantErr: ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.settings != nil {
				c.graph.SetMailboxSettings(tc.user, tc.settings)
			}
			got, err := c.client.MailboxSettings(context.Background(), Caller{User: tc.user})
			switch {
			case tc.wantErr == errAny:
				if err == nil {
					t.Fatalf("MailboxSettings = %+v, want an error", got)
				}
				return
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			case err != nil:
				t.Fatalf("MailboxSettings: %v", err)
			}
			if got.Location == nil || got.Location.String() != tc.want.TimeZone {
				t.Errorf("Location = %v, want %s", got.Location, tc.want.TimeZone)
			}
			got.Location = nil
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("MailboxSettings = %+v\nwant %+v", got, tc.want)
			}
		})
	}
	last := c.graph.Requests()[len(c.graph.Requests())-1]
	if last.Method != "GET" || last.Query.Get("$select") != "timeZone,workingHours" {
		t.Errorf("last request = %s %s?%s, want a GET selecting timeZone,workingHours", last.Method, last.Path, last.Query.Encode())
	}
}

var errAny = errors.New("any error")

// TestWindowsZonesLoad checks every entry of the table names a zone Go can load.
func TestWindowsZonesLoad(t *testing.T) {
	for windows, iana := range windowsZones {
		t.Run(windows, func(t *testing.T) {
			name, loc, err := LoadTimeZone(windows)
			if err != nil {
				t.Fatalf("LoadTimeZone(%q): %v", windows, err)
			}
			if name != iana || loc == nil {
				t.Errorf("LoadTimeZone(%q) = %q, %v; want %q", windows, name, loc, iana)
			}
		})
	}
}

func TestLoadTimeZoneRefuses(t *testing.T) {
	for _, name := range []string{"", "tzone://Microsoft/Custom", "Nowhere Standard Time", "../../etc/passwd"} {
		t.Run(name, func(t *testing.T) {
			if got, _, err := LoadTimeZone(name); err == nil {
				t.Errorf("LoadTimeZone(%q) = %q, want an error", name, got)
			}
		})
	}
}
