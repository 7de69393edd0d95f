package mongo

import (
	"testing"
	"time"
)

func TestWithdrawBuildersGolden(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		doc  any
	}{
		{"alerts-event-recent", recentEventAlerts(at.UnixMilli())},
		{"events-opens-at", opensAt("m1", 2, at.UnixMilli())},
	} {
		t.Run(tc.name, func(t *testing.T) { golden(t, tc.name, tc.doc) })
	}
}
