package followed

import (
	"testing"
	"time"
)

func TestNewIDSortsInOrderOfMaking(t *testing.T) {
	now := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		times []time.Time
	}{
		{"same millisecond", []time.Time{now, now, now, now}},
		{"advancing", []time.Time{now, now.Add(time.Millisecond), now.Add(time.Second)}},
		{"clock stepping back", []time.Time{now.Add(time.Hour), now, now}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prev := ""
			for i, at := range tt.times {
				id := NewID(at)
				if len(id) != 26 {
					t.Fatalf("id %q has %d characters", id, len(id))
				}
				if id <= prev {
					t.Fatalf("id %d %q does not sort after %q", i, id, prev)
				}
				prev = id
			}
		})
	}
}
