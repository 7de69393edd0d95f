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
		{"clock stepping back a little", []time.Time{now.Add(100 * time.Millisecond), now, now}},
	}
	for c, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prev := ""
			for i, at := range tt.times {
				id := NewID(at.Add(time.Duration(c) * time.Hour)) // each case far from the others' clock
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

func TestNewIDTakesATimeFarBackAsItIs(t *testing.T) {
	now := time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)
	ahead := NewID(now.Add(time.Hour))
	back := NewID(now)
	if at, ok := IDTime(back); !ok || !at.Equal(now) {
		t.Fatalf("an id made for %s carries %s (ok %v)", now, at, ok)
	}
	if back >= ahead {
		t.Fatalf("%q made an hour earlier sorts after %q", back, ahead)
	}
}
