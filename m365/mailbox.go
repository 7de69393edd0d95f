package m365

import (
	"context"
	"fmt"
	"strings"
	"time"

	absser "github.com/microsoft/kiota-abstractions-go/serialization"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/users"
)

// MailboxSettings are the parts of a user's Outlook settings that decide when mail is best sent.
type MailboxSettings struct {
	TimeZone     string         // IANA name, e.g. "Europe/Paris", even when Outlook stores a Windows name
	Location     *time.Location // TimeZone loaded, for computing local times
	WorkingHours WorkingHours
}

// WorkingHours are the days and the span of day the user works, in their own time zone.
type WorkingHours struct {
	Days       []time.Weekday
	Start, End time.Duration // since local midnight
	TimeZone   string        // IANA name; Outlook lets it differ from the mailbox's
}

// MailboxSettings reads the caller's time zone and working hours.
func (c *Client) MailboxSettings(ctx context.Context, caller Caller) (MailboxSettings, error) {
	u, err := c.user(caller)
	if err != nil {
		return MailboxSettings{}, err
	}
	s, err := u.MailboxSettings().Get(ctx, &users.ItemMailboxSettingsRequestBuilderGetRequestConfiguration{
		QueryParameters: &users.ItemMailboxSettingsRequestBuilderGetQueryParameters{Select: []string{"timeZone", "workingHours"}},
	})
	if err != nil {
		return MailboxSettings{}, graphErr("read mailbox settings of "+caller.User, err)
	}
	return mailboxSettings(s)
}

// mailboxSettings converts Graph's resource, mapping Windows zone names to IANA ones.
func mailboxSettings(s models.MailboxSettingsable) (MailboxSettings, error) {
	out := MailboxSettings{TimeZone: "UTC", Location: time.UTC}
	if tz := deref(s.GetTimeZone()); tz != "" {
		name, loc, err := LoadTimeZone(tz)
		if err != nil {
			return MailboxSettings{}, err
		}
		out.TimeZone, out.Location = name, loc
	}
	out.WorkingHours.TimeZone = out.TimeZone
	wh := s.GetWorkingHours()
	if wh == nil {
		return out, nil
	}
	for _, d := range wh.GetDaysOfWeek() {
		if wd, ok := weekdays[d.String()]; ok {
			out.WorkingHours.Days = append(out.WorkingHours.Days, wd)
		}
	}
	var err error
	if out.WorkingHours.Start, err = sinceMidnight(wh.GetStartTime()); err != nil {
		return MailboxSettings{}, fmt.Errorf("m365: working hours start: %w", err)
	}
	if out.WorkingHours.End, err = sinceMidnight(wh.GetEndTime()); err != nil {
		return MailboxSettings{}, fmt.Errorf("m365: working hours end: %w", err)
	}
	if z := wh.GetTimeZone(); z != nil && deref(z.GetName()) != "" {
		name, _, err := LoadTimeZone(deref(z.GetName()))
		if err != nil {
			return MailboxSettings{}, fmt.Errorf("m365: working hours: %w", err)
		}
		out.WorkingHours.TimeZone = name
	}
	return out, nil
}

var weekdays = map[string]time.Weekday{
	"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday, "wednesday": time.Wednesday,
	"thursday": time.Thursday, "friday": time.Friday, "saturday": time.Saturday,
}

func sinceMidnight(t *absser.TimeOnly) (time.Duration, error) {
	if t == nil {
		return 0, nil
	}
	v, err := time.Parse("15:04:05", t.String())
	if err != nil {
		return 0, fmt.Errorf("parse time of day %q: %w", t.String(), err)
	}
	return time.Duration(v.Hour())*time.Hour + time.Duration(v.Minute())*time.Minute + time.Duration(v.Second())*time.Second, nil
}

// LoadTimeZone resolves a time zone name as Outlook stores it (a Windows name such as "Romance Standard
// Time", an IANA name, or "tzone://Microsoft/Utc") to its IANA name and location.
func LoadTimeZone(name string) (string, *time.Location, error) {
	name = strings.TrimSpace(name)
	if strings.EqualFold(name, "tzone://Microsoft/Utc") || strings.EqualFold(name, "UTC") {
		return "UTC", time.UTC, nil
	}
	iana, ok := windowsZones[name]
	if !ok {
		iana = name
	}
	if iana == "" || strings.HasPrefix(iana, "tzone://") {
		return "", nil, fmt.Errorf("m365: unknown time zone %q", name)
	}
	loc, err := time.LoadLocation(iana)
	if err != nil {
		return "", nil, fmt.Errorf("m365: unknown time zone %q: %w", name, err)
	}
	return iana, loc, nil
}
