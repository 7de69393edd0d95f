package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"

	"github.com/engage-email/engage/followed"
)

// maxClaimed bounds the keys remembered; past it they are forgotten at once and relearned, which
// costs one batch its lookups.
const maxClaimed = 1 << 18

// claimed remembers audience keys known to be stored as of an audience epoch. A key stored stays
// stored until a row of audience is deleted, and every deletion moves the epoch on (a trigger, so
// another process's deletions count too); so while the epoch read inside a write transaction equals
// the one the keys were learnt under, claiming them again could only be ignored.
type claimed struct {
	mu    sync.Mutex
	epoch int64
	keys  map[followed.AudienceKey]struct{}
}

// epochSQL reads the audience epoch; every group commit runs it, so it is among the hot statements.
const epochSQL = "SELECT n FROM audience_epoch"

// epochOf reads the audience epoch inside tx.
func (db *DB) epochOf(ctx context.Context, tx *sql.Tx) (int64, error) {
	st, err := db.stmt(ctx, tx, epochSQL)
	if err != nil {
		return 0, fmt.Errorf("audience epoch: %w", err)
	}
	var n int64
	if err := st.QueryRowContext(ctx).Scan(&n); err != nil {
		return 0, fmt.Errorf("audience epoch: %w", err)
	}
	return n, nil
}

// unknown returns the claims whose keys are not known to be stored as of epoch, forgetting every
// key when the epoch has moved.
func (c *claimed) unknown(epoch int64, cl followed.Claims) followed.Claims {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.keys == nil || c.epoch != epoch {
		c.keys, c.epoch = map[followed.AudienceKey]struct{}{}, epoch
	}
	out := followed.Claims{By: cl.By}
	for _, k := range cl.Keys {
		if _, ok := c.keys[k]; !ok {
			out.Keys = append(out.Keys, k)
		}
	}
	return out
}

// learn records keys as stored as of epoch, once the transaction that claimed them has committed.
func (c *claimed) learn(epoch int64, keys []followed.AudienceKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch != epoch {
		return // a later batch saw a deletion: these may be gone
	}
	if len(c.keys)+len(keys) > maxClaimed {
		c.keys = map[followed.AudienceKey]struct{}{}
	}
	for _, k := range keys {
		c.keys[k] = struct{}{}
	}
}
