package m365

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/engage-email/engage/m365/m365test"
)

func TestGraphFailures(t *testing.T) {
	const user = "bob@contoso.com"
	sendPath := func(id string) string { return "/users/" + user + "/messages/" + id + "/send" }
	getPath := func(id string) string { return "/users/" + user + "/messages/" + id }
	tests := []struct {
		name     string
		fault    func(id string) m365test.Fault
		op       string // "send" or "exists"
		wantErr  []error
		wantCode string
		tries    int           // requests graph saw for the operation
		minWait  time.Duration // the client must have waited at least this long
		after    time.Duration // GraphError.RetryAfter expected
		attempts int           // Config.MaxAttempts; 3 when zero
	}{
		{name: "429 Retry-After seconds then success", op: "send", tries: 2, minWait: 900 * time.Millisecond,
			fault: func(id string) m365test.Fault {
				return m365test.Fault{Path: sendPath(id), Times: 1, Status: 429, RetryAfter: "1", Code: "ApplicationThrottled", Message: "Too many requests"}
			}},
		{name: "503 Retry-After HTTP date then success", op: "send", tries: 2,
			fault: func(id string) m365test.Fault {
				return m365test.Fault{Path: sendPath(id), Times: 1, Status: 503, RetryAfter: time.Now().Add(time.Second).UTC().Format(http.TimeFormat), Code: "ServiceUnavailable"}
			}},
		{name: "503 without Retry-After backs off then succeeds", op: "send", tries: 3, minWait: 500 * time.Millisecond,
			fault: func(id string) m365test.Fault {
				return m365test.Fault{Path: sendPath(id), Times: 2, Status: 503, Code: "ServiceUnavailable"}
			}},
		{name: "429 past max attempts", op: "send", tries: 2, attempts: 2, wantErr: []error{ErrThrottled}, wantCode: "ApplicationThrottled", after: time.Second,
			fault: func(id string) m365test.Fault {
				return m365test.Fault{Path: sendPath(id), Times: 5, Status: 429, RetryAfter: "1", Code: "ApplicationThrottled"}
			}},
		{name: "429 asking longer than MaxRetryDelay fails at once", op: "send", tries: 1, wantErr: []error{ErrThrottled}, after: 2 * time.Minute,
			fault: func(id string) m365test.Fault {
				return m365test.Fault{Path: sendPath(id), Times: 1, Status: 429, RetryAfter: "120", Code: "ApplicationThrottled"}
			}},
		{name: "504 on send is not retried", op: "send", tries: 1, wantErr: []error{ErrThrottled}, wantCode: "GatewayTimeout",
			fault: func(id string) m365test.Fault {
				return m365test.Fault{Path: sendPath(id), Times: 1, Status: 504, Code: "GatewayTimeout"}
			}},
		{name: "504 on read is retried", op: "exists", tries: 2,
			fault: func(id string) m365test.Fault {
				return m365test.Fault{Path: getPath(id), Times: 1, Status: 504, RetryAfter: "0", Code: "GatewayTimeout"}
			}},
		{name: "403 missing Mail.Send", op: "send", tries: 1, wantErr: []error{ErrPermission}, wantCode: "ErrorAccessDenied",
			fault: func(id string) m365test.Fault {
				return m365test.Fault{Path: sendPath(id), Times: 1, Status: 403, Code: "ErrorAccessDenied", Message: "Access is denied. Check credentials and try again."}
			}},
		{name: "401 token rejected", op: "send", tries: 1, wantErr: []error{ErrUnauthorized}, wantCode: "InvalidAuthenticationToken",
			fault: func(id string) m365test.Fault {
				return m365test.Fault{Path: sendPath(id), Times: 1, Status: 401, Code: "InvalidAuthenticationToken", Message: "Access token has expired."}
			}},
		{name: "404 unknown draft", op: "exists", tries: 1, wantErr: []error{ErrNotFound}, wantCode: "ErrorItemNotFound",
			fault: func(id string) m365test.Fault {
				return m365test.Fault{Path: getPath(id), Times: 1, Status: 404, Code: "ErrorItemNotFound"}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			attempts := tc.attempts
			if attempts == 0 {
				attempts = 3
			}
			c := newCloud(t, func(cfg *Config) { cfg.MaxAttempts = attempts; cfg.MaxRetryDelay = 3 * time.Second })
			ctx := context.Background()
			caller := Caller{User: user}
			ref, err := c.client.CreateDraft(ctx, caller, Draft{Subject: "s", HTML: "<p>x</p>", To: []Address{{Email: "x@fabrikam.com"}}})
			if err != nil {
				t.Fatalf("CreateDraft: %v", err)
			}
			f := tc.fault(ref.ID)
			c.graph.Fail(f)
			start := time.Now()
			switch tc.op {
			case "send":
				err = c.client.SendDraft(ctx, caller, ref.ID)
			case "exists":
				_, err = c.client.DraftExists(ctx, caller, ref.ID)
			}
			elapsed := time.Since(start)
			tries := 0
			for _, r := range c.graph.Requests() {
				if r.Path == f.Path {
					tries++
				}
			}
			if tries != tc.tries {
				t.Errorf("graph saw %d tries, want %d", tries, tc.tries)
			}
			if elapsed < tc.minWait {
				t.Errorf("returned after %s, want at least %s of waiting", elapsed, tc.minWait)
			}
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("err = %v, want success after retries", err)
				}
				return
			}
			for _, want := range tc.wantErr {
				if !errors.Is(err, want) {
					t.Errorf("err = %v, want errors.Is %v", err, want)
				}
			}
			var ge *GraphError
			if !errors.As(err, &ge) {
				t.Fatalf("err = %T %v, want *GraphError", err, err)
			}
			if ge.Status != f.Status || (tc.wantCode != "" && ge.Code != tc.wantCode) || ge.RetryAfter != tc.after {
				t.Errorf("GraphError = %+v, want status %d code %q retry after %s", ge, f.Status, tc.wantCode, tc.after)
			}
			if f.Message != "" && ge.Message != f.Message {
				t.Errorf("Message = %q, want %q", ge.Message, f.Message)
			}
		})
	}
}

func TestDelegatedTokenCannotReachAnotherMailbox(t *testing.T) {
	c := newCloud(t, nil)
	alice := c.userCaller(t, "alice@contoso.com")
	alice.User = "bob@contoso.com"
	_, err := c.client.CreateDraft(context.Background(), alice, Draft{Subject: "s", HTML: "x", To: []Address{{Email: "x@fabrikam.com"}}})
	var ge *GraphError
	if !errors.Is(err, ErrPermission) || !errors.As(err, &ge) || ge.Code != "ErrorAccessDenied" {
		t.Fatalf("err = %v, want ErrPermission with code ErrorAccessDenied", err)
	}
}

func TestContextCancelledWhileWaiting(t *testing.T) {
	c := newCloud(t, func(cfg *Config) { cfg.MaxRetryDelay = time.Minute })
	const path = "/users/bob@contoso.com/messages/AAMk1/send"
	c.graph.Fail(m365test.Fault{Path: path, Times: 3, Status: 429, RetryAfter: "30", Code: "ApplicationThrottled"})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := c.client.SendDraft(ctx, Caller{User: "bob@contoso.com"}, "AAMk1")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("returned after %s; the 30 s Retry-After should have been cut short by the context", elapsed)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"0", 0, true},
		{"5", 5 * time.Second, true},
		{" 12 ", 12 * time.Second, true},
		{"999999999999", 24 * time.Hour, true},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"", 0, false},
		{"soon", 0, false},
		{"Sun, 22 Nov 2026 10:00:30 GMT", 30 * time.Second, true},
		{"Sunday, 22-Nov-26 10:01:00 GMT", time.Minute, true},
		{"Sun Nov 22 10:00:07 2026", 7 * time.Second, true},
		{"Sun, 22 Nov 2026 09:00:00 GMT", 0, true}, // in the past: retry now
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := parseRetryAfter(tc.in, now)
			if got != tc.want || ok != tc.ok {
				t.Errorf("parseRetryAfter(%q) = %s, %v; want %s, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestBackoffIsCappedAndJittered(t *testing.T) {
	rt := &retryTransport{baseDelay: 500 * time.Millisecond, maxDelay: 4 * time.Second}
	for attempt := 1; attempt <= 10; attempt++ {
		ceiling := min(rt.baseDelay<<(attempt-1), rt.maxDelay)
		for range 20 {
			d, ok := rt.delay("", attempt, time.Now())
			if !ok || d < ceiling/2 || d > ceiling {
				t.Fatalf("attempt %d: delay %s (ok %v), want within [%s, %s]", attempt, d, ok, ceiling/2, ceiling)
			}
		}
	}
	if _, ok := rt.delay("5", 1, time.Now()); ok {
		t.Error("a Retry-After above maxDelay was accepted")
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"0", "120", "Sun, 22 Nov 2026 10:00:30 GMT", "-5", "1e9", ""} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := parseRetryAfter(s, now)
		if d < 0 || d > 24*time.Hour {
			t.Fatalf("parseRetryAfter(%q) = %s", s, d)
		}
		if !ok && d != 0 {
			t.Fatalf("parseRetryAfter(%q) = %s with ok=false", s, d)
		}
	})
}
