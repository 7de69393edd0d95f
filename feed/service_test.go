package feed_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/engage-email/engage/auth"
	"github.com/engage-email/engage/feed"
	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/store/sqlite"
)

func TestRegisterRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	svc := feed.NewService(sqlite.OpenTemp(t), feed.Options{Resolver: names{"crm.example.com": {"93.184.216.34"}}})
	good := feed.EndpointInput{URL: "https://crm.example.com/hook", Secret: secret, Categories: []string{"open", "BOUNCE"}}
	for _, tc := range []struct {
		name string
		who  auth.Identity
		edit func(*feed.EndpointInput)
		want string
	}{
		{"accepted", admin, func(*feed.EndpointInput) {}, ""},
		{"not an admin", auth.Identity{Email: "crm@contoso.com", Integration: true}, func(*feed.EndpointInput) {}, "needs an admin"},
		{"short secret", admin, func(in *feed.EndpointInput) { in.Secret = "short" }, "at least 32"},
		{"secret with spaces", admin, func(in *feed.EndpointInput) { in.Secret = strings.Repeat("a ", 20) }, "spaces"},
		{"huge secret", admin, func(in *feed.EndpointInput) { in.Secret = strings.Repeat("a", 600) }, "over the limit"},
		{"unknown category", admin, func(in *feed.EndpointInput) { in.Categories = []string{"OPEN", "FORWARD"} }, "FORWARD"},
		{"interval too short", admin, func(in *feed.EndpointInput) { in.Interval = time.Millisecond }, "between"},
		{"interval too long", admin, func(in *feed.EndpointInput) { in.Interval = 48 * time.Hour }, "between"},
		{"plain http", admin, func(in *feed.EndpointInput) { in.URL = "http://crm.example.com/hook" }, "https"},
		{"private", admin, func(in *feed.EndpointInput) { in.URL = "https://10.0.0.1/hook" }, "private"},
		{"bad cursor", admin, func(in *feed.EndpointInput) { in.Since = "nope" }, "cursor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := good
			tc.edit(&in)
			ep, err := svc.Register(ctx, tc.who, in)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if ep.Interval != feed.DefaultBatchIn || len(ep.Categories) != 2 || ep.Categories[0] != feed.Open {
					t.Errorf("endpoint %+v", ep)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			}
			if !errors.Is(err, followed.ErrBadInput) && !errors.Is(err, auth.ErrForbidden) {
				t.Errorf("%v is neither bad input nor forbidden", err)
			}
		})
	}
	eps, err := svc.Endpoints(ctx, admin)
	if err != nil || len(eps) != 1 {
		t.Errorf("%d endpoints stored (%v), want the one accepted", len(eps), err)
	}
}

func TestResponsesNeedAReader(t *testing.T) {
	svc := feed.NewService(sqlite.OpenTemp(t), feed.Options{})
	for _, tc := range []struct {
		who auth.Identity
		ok  bool
	}{
		{auth.Identity{Email: "rep@contoso.com"}, false},
		{auth.Identity{Email: "crm@contoso.com", Integration: true}, true},
		{admin, true},
	} {
		t.Run(tc.who.Email, func(t *testing.T) {
			p, err := svc.Responses(context.Background(), tc.who, feed.ResponsesInput{})
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && (p.Cursor != feed.EncodeCursor(0) || p.HasMore || len(p.Records) != 0) {
				t.Errorf("empty log: %+v", p)
			}
		})
	}
}

func TestCursorRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"", 0, true},
		{feed.EncodeCursor(42), 42, true},
		{"cmVzcDotMQ", 0, false}, // "resp:-1"
		{"cmVzcDowMQ", 0, false}, // "resp:01"
		{"YWxlcnQ6MQ", 0, false}, // an alert cursor
		{"!!", 0, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := feed.DecodeCursor(tc.in)
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("DecodeCursor(%q) = %d, %v", tc.in, got, err)
			}
		})
	}
}
