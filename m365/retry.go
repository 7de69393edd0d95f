package m365

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// retryTransport retries throttled (429) and unavailable (503, and 504 for idempotent methods) Graph
// calls, honouring Retry-After and the request's context. A POST is not retried on 504: the gateway
// may have timed out after Exchange sent the mail, and sending twice is worse than failing once.
type retryTransport struct {
	base        http.RoundTripper
	maxAttempts int
	baseDelay   time.Duration
	maxDelay    time.Duration
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("m365: buffer request body for retries: %w", err)
		}
		body = b
	}
	ctx := req.Context()
	for attempt := 1; ; attempt++ {
		try := req.Clone(ctx)
		if body != nil {
			try.Body = io.NopCloser(bytes.NewReader(body))
			try.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		}
		resp, err := t.base.RoundTrip(try)
		if err != nil || !retryable(req.Method, resp.StatusCode) || attempt >= t.maxAttempts {
			return resp, err
		}
		delay, ok := t.delay(resp.Header.Get("Retry-After"), attempt, time.Now())
		if !ok {
			return resp, nil // Graph asks for a longer wait than we may block: let the caller reschedule
		}
		// Drain a little so the connection can be reused, then wait.
		_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
		resp.Body.Close()
		if err := sleep(ctx, delay); err != nil {
			return nil, fmt.Errorf("m365: waiting %s to retry %s %s: %w", delay, req.Method, req.URL.Path, err)
		}
	}
}

func retryable(method string, status int) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return true
	case http.StatusGatewayTimeout:
		return method == http.MethodGet || method == http.MethodHead || method == http.MethodPut || method == http.MethodDelete
	}
	return false
}

// delay is how long to wait before try attempt+1: Retry-After when given (seconds or an HTTP date), else
// exponential backoff with jitter. It reports false when Retry-After exceeds maxDelay.
func (t *retryTransport) delay(retryAfter string, attempt int, now time.Time) (time.Duration, bool) {
	if d, ok := parseRetryAfter(retryAfter, now); ok {
		return d, d <= t.maxDelay
	}
	d := t.baseDelay << (attempt - 1)
	if d <= 0 || d > t.maxDelay {
		d = t.maxDelay
	}
	// Full jitter on the upper half keeps concurrent callers from retrying in step.
	return d/2 + rand.N(d/2+1), true
}

// maxRetryAfter bounds what a Retry-After may ask, so a hostile or broken value cannot overflow a Duration.
const (
	maxRetryAfter     = 24 * time.Hour
	maxRetryAfterSecs = int64(maxRetryAfter / time.Second)
)

// parseRetryAfter reads a Retry-After value (RFC 9110: delay-seconds or an HTTP-date).
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		return min(time.Duration(min(secs, maxRetryAfterSecs))*time.Second, maxRetryAfter), true
	}
	when, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return min(max(when.Sub(now), 0), maxRetryAfter), true
}

func sleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
