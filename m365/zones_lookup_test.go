package m365

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/engage-email/engage/m365/m365test"
	"github.com/engage-email/engage/recommend"
)

func TestZonesMailboxZone(t *testing.T) {
	c := newCloud(t, nil)
	zones := NewZones(c.client)
	c.graph.SetMailboxSettings("paris@contoso.com", m365test.DefaultMailboxSettings("Romance Standard Time"))
	c.graph.SetMailboxSettings("ny@contoso.com", m365test.DefaultMailboxSettings("America/New_York"))
	c.graph.SetMailboxSettings("unset@contoso.com", map[string]any{"dateFormat": "dd/MM/yyyy"})
	c.graph.SetMailboxSettings("odd@contoso.com", m365test.DefaultMailboxSettings("Atlantis Standard Time"))
	c.graph.SetMailboxSettings("locked@contoso.com", m365test.DefaultMailboxSettings("Tokyo Standard Time"))
	c.graph.Fail(m365test.Fault{Method: "GET", Path: "/users/locked@contoso.com/mailboxSettings", Times: 1,
		Status: http.StatusForbidden, Code: "ErrorAccessDenied", Message: "Access is denied."})
	tests := []struct {
		name, email string
		want        string // IANA zone; "" when an error is wanted
		wantErr     error  // matched with errors.Is
		notErr      error  // must not match, e.g. a refusal is not a missing mailbox
	}{
		{name: "Windows name", email: "paris@contoso.com", want: "Europe/Paris"},
		{name: "IANA name in any case of address", email: "NY@contoso.com", want: "America/New_York"},
		{name: "no zone set is UTC", email: "unset@contoso.com", want: "UTC"},
		{name: "external address has no mailbox", email: "ann@fabrikam.com", wantErr: recommend.ErrNoMailbox},
		{name: "the Graph error is kept", email: "ghost@contoso.com", wantErr: ErrNotFound},
		{name: "unknown zone is an error, not a missing mailbox", email: "odd@contoso.com", wantErr: errAny, notErr: recommend.ErrNoMailbox},
		{name: "refused is an error, not a missing mailbox", email: "locked@contoso.com", wantErr: ErrPermission, notErr: recommend.ErrNoMailbox},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			loc, err := zones.MailboxZone(context.Background(), tc.email)
			if tc.want != "" {
				if err != nil || loc == nil || loc.String() != tc.want {
					t.Fatalf("MailboxZone(%s) = %v, %v; want %s", tc.email, loc, err, tc.want)
				}
				return
			}
			if err == nil || (tc.wantErr != errAny && !errors.Is(err, tc.wantErr)) {
				t.Fatalf("MailboxZone(%s) = %v, %v; want error %v", tc.email, loc, err, tc.wantErr)
			}
			if tc.notErr != nil && errors.Is(err, tc.notErr) {
				t.Errorf("MailboxZone(%s) error %v matches %v", tc.email, err, tc.notErr)
			}
		})
	}
	for i, r := range c.graph.Requests() {
		if r.Method != http.MethodGet || r.Query.Get("$select") != "timeZone,workingHours" {
			t.Errorf("request %d = %s %s?%s, want a GET of mailbox settings", i, r.Method, r.Path, r.Query.Encode())
		}
		if who, err := r.Caller(); err != nil || who != "app" {
			t.Errorf("request %d %s made as %q (%v), want the app-only token", i, r.Path, who, err)
		}
	}
}
