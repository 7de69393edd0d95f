package graph

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/engage-email/engage/delivery"
)

func TestMemoizedJob(t *testing.T) {
	for _, c := range []struct {
		name      string
		memo      bool
		wantLoads int64
	}{
		{"a query reads each message once, however many fields ask", true, 2},
		{"without a memo (a mutation) every field reads afresh", false, 16},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			if c.memo {
				ctx = context.WithValue(ctx, memoKey{}, &memo{jobs: map[string]*memoJob{}})
			}
			var loads atomic.Int64
			var wg sync.WaitGroup
			for i := range 16 {
				id := []string{"m1", "m2"}[i%2]
				wg.Go(func() {
					j, err := memoizedJob(ctx, id, func() (delivery.Job, error) {
						loads.Add(1)
						return delivery.Job{MessageID: id, Status: delivery.StatusSent}, nil
					})
					if err != nil || j.MessageID != id {
						t.Errorf("job of %s: %+v (%v)", id, j, err)
					}
				})
			}
			wg.Wait()
			if n := loads.Load(); n != c.wantLoads {
				t.Errorf("%d loads, want %d", n, c.wantLoads)
			}
		})
	}
}
