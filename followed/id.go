package followed

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"sync"
	"time"
)

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// idClock keeps ids made by this process in the order they were made, even within one millisecond:
// listings page by (time, id), and two messages followed in the same millisecond must not swap places
// between pages. It is the package's only state, and holds no configuration.
var idClock struct {
	sync.Mutex
	ms  uint64
	seq uint16
}

// maxIDSkew bounds how far behind the latest id a new one may be pulled forward to keep the order: a
// time further back (a clock stepped back, a caller naming an old time) is taken as it is, so the time
// an id carries stays within this of the truth.
const maxIDSkew = 1000 // milliseconds

// NewID returns a random id whose text sorts by creation time (milliseconds, then order of making within
// this process), so ids page in time order.
func NewID(now time.Time) string {
	ms := uint64(max(now.UnixMilli(), 0))
	idClock.Lock()
	if ms <= idClock.ms && idClock.ms-ms < maxIDSkew {
		ms = idClock.ms
		idClock.seq++
		if idClock.seq == 0 { // 65,536 ids in one millisecond: borrow the next one
			ms++
		}
	} else {
		idClock.seq = 0
	}
	idClock.ms = ms
	seq := idClock.seq
	idClock.Unlock()

	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], ms<<16|uint64(seq))
	rand.Read(b[8:])
	return idEncoding.EncodeToString(b[:])
}
