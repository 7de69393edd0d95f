package alerts_test

import (
	"errors"
	"testing"

	"github.com/engage-email/engage/alerts"
	"github.com/engage-email/engage/followed"
)

func TestCursor(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int64
		ok   bool
	}{
		{"round trip", alerts.EncodeCursor(42), 42, true},
		{"zero", alerts.EncodeCursor(0), 0, true},
		{"largest", alerts.EncodeCursor(1<<63 - 1), 1<<63 - 1, true},
		{"not base64", "!!", 0, false},
		{"another listing's cursor", "MTIzLmFiYw", 0, false}, // "123.abc"
		{"negative", "YWxlcnQ6LTE", 0, false},                // "alert:-1"
		{"leading zero", "YWxlcnQ6MDE", 0, false},            // "alert:01"
		{"no digits", "YWxlcnQ6", 0, false},                  // "alert:"
		{"overflow", "YWxlcnQ6OTk5OTk5OTk5OTk5OTk5OTk5OTk5", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := alerts.DecodeCursor(tt.in)
			if tt.ok != (err == nil) || got != tt.want {
				t.Fatalf("DecodeCursor(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
			}
			if err != nil && !errors.Is(err, followed.ErrBadInput) {
				t.Fatalf("error %v is not ErrBadInput", err)
			}
		})
	}
}

func FuzzDecodeCursor(f *testing.F) {
	for _, s := range []string{alerts.EncodeCursor(7), "", "YWxlcnQ6LTE", "nope"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		seq, err := alerts.DecodeCursor(s)
		if err != nil {
			if !errors.Is(err, followed.ErrBadInput) {
				t.Fatalf("error %v is not ErrBadInput", err)
			}
			return
		}
		if seq < 0 || alerts.EncodeCursor(seq) != s {
			t.Fatalf("%q decoded to %d, which encodes as %q", s, seq, alerts.EncodeCursor(seq))
		}
	})
}

func TestPreferencesWants(t *testing.T) {
	tests := []struct {
		kind alerts.Kind
		want bool
	}{
		{alerts.FirstOpen, true}, {alerts.ReplyReceived, true}, {alerts.ReminderDue, true},
		{alerts.LinkClicked, false}, {alerts.AttachmentOpened, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			if got := alerts.DefaultPreferences.Wants(tt.kind); got != tt.want {
				t.Fatalf("default wants %s = %v", tt.kind, got)
			}
		})
	}
}
