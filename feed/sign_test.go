package feed_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/engage-email/engage/feed"
)

func TestVerify(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	body := []byte(`{"records":[]}`)
	at := time.Unix(1_800_000_000, 0)
	good := feed.Sign(secret, at, body)
	sig := strings.TrimPrefix(good, "t=1800000000,")
	for _, tc := range []struct {
		name   string
		secret []byte
		header string
		body   []byte
		now    time.Time
		ok     bool
	}{
		{"as signed", secret, good, body, at, true},
		{"within tolerance", secret, good, body, at.Add(4 * time.Minute), true},
		{"clock behind", secret, good, body, at.Add(-4 * time.Minute), true},
		{"replayed later", secret, good, body, at.Add(6 * time.Minute), false},
		{"other body", secret, good, []byte(`{"records":[1]}`), at, false},
		{"other secret", []byte("another secret of thirty-two bytes"), good, body, at, false},
		{"old and new secret", secret, "t=1800000000,v1=" + strings.Repeat("00", 32) + "," + sig, body, at, true},
		{"unknown scheme skipped", secret, good + ",v0=abc", body, at, true},
		{"timestamp moved", secret, strings.Replace(good, "t=1800000000", "t=1800000001", 1), body, at, false},
		{"no timestamp", secret, sig, body, at, false},
		{"no signature", secret, "t=1800000000", body, at, false},
		{"two timestamps", secret, "t=1800000000," + good, body, at, false},
		{"short signature", secret, "t=1800000000,v1=abcd", body, at, false},
		{"not hex", secret, "t=1800000000,v1=" + strings.Repeat("zz", 32), body, at, false},
		{"padded timestamp", secret, "t=01800000000," + sig, body, at, false},
		{"no equals", secret, "garbage", body, at, false},
		{"empty", secret, "", body, at, false},
		{"huge", secret, strings.Repeat("t=1,", 2000), body, at, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := feed.Verify(tc.secret, tc.header, tc.body, tc.now, 5*time.Minute)
			if (err == nil) != tc.ok {
				t.Fatalf("Verify = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, feed.ErrSignature) {
				t.Errorf("%v does not match ErrSignature", err)
			}
		})
	}
}

func FuzzVerify(f *testing.F) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	at := time.Unix(1_800_000_000, 0)
	f.Add(feed.Sign(secret, at, []byte("{}")), []byte("{}"))
	f.Add("t=1800000000,v1=00", []byte(""))
	f.Add("t=,v1=,=,,", []byte("x"))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		err := feed.Verify(secret, header, body, at, time.Minute)
		if err == nil && !strings.Contains(header, feed.Sign(secret, mustUnix(t, header), body)[len("t=")+10+len(",v1="):]) {
			t.Fatalf("accepted %q without the body's signature", header)
		}
	})
}

// mustUnix reads the t= of a header Verify accepted.
func mustUnix(t *testing.T, header string) time.Time {
	for _, part := range strings.Split(header, ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(part), "t="); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("accepted timestamp %q", v)
			}
			return time.Unix(n, 0)
		}
	}
	t.Fatalf("accepted %q without a timestamp", header)
	return time.Time{}
}
