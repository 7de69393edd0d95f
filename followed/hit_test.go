package followed_test

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/engage-email/engage/followed"
)

// TestHitEventClipsTheUserAgent checks that an event keeps at most MaxUserAgent bytes of its hit's
// agent, cut between characters, so that no client can make an event too large to spool.
func TestHitEventClipsTheUserAgent(t *testing.T) {
	devices, err := followed.NewDeviceParser()
	if err != nil {
		t.Fatal(err)
	}
	outlook := "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17126; Pro)"
	tests := []struct {
		name, agent, want string
	}{
		{"a real agent is kept whole", outlook, outlook},
		{"exactly the limit is kept whole", strings.Repeat("a", followed.MaxUserAgent), strings.Repeat("a", followed.MaxUserAgent)},
		{"a long agent is cut to the limit", strings.Repeat("<", 200_000), strings.Repeat("<", followed.MaxUserAgent)},
		// "é" is two bytes: after a one-byte head, the limit falls inside a character.
		{"a cut between characters", "x" + strings.Repeat("é", followed.MaxUserAgent), "x" + strings.Repeat("é", followed.MaxUserAgent/2-1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := followed.Hit{Token: followed.Token{Kind: followed.TokenOpen, MessageID: "m", Recipient: 0}, At: time.Now(),
				IP: "192.0.2.1", UserAgent: tt.agent, Method: "GET"}
			ev := h.Event(devices)
			if ev.UserAgent != tt.want {
				t.Errorf("kept %d bytes (%.20q...), want %d", len(ev.UserAgent), ev.UserAgent, len(tt.want))
			}
			if !utf8.ValidString(ev.UserAgent) {
				t.Errorf("kept agent is not valid UTF-8")
			}
		})
	}
}
