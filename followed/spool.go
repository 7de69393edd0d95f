package followed

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"sync"
)

// Spool record framing: a little-endian payload length, the payload's CRC32C, then the payload (an
// Event as JSON). A torn write leaves a short or mismatching record, which is how a crash shows.
const (
	spoolHeader = 8
	// SpoolMaxRecord bounds one record, so a corrupt length cannot make a reader allocate gigabytes.
	SpoolMaxRecord = 1 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errSpoolCorrupt marks bytes that are not a whole, intact record.
var errSpoolCorrupt = errors.New("corrupt spool record")

// errRecordTooLarge marks an event too large for one spool record.
var errRecordTooLarge = errors.New("more than a spool record holds")

// ErrSpoolClosed means the spool was closed and takes no more records.
var ErrSpoolClosed = errors.New("followed: spool closed")

// Spool is an append-only file of events that could not be stored yet, so that a tracking hit is never
// lost while the store is down or slow. Appends from many goroutines share one fsync (group commit);
// a reader takes records in order from the durable part and consumes them once they are stored.
type Spool struct {
	path string
	log  *slog.Logger

	syncMu sync.Mutex // serialises fsyncs; taken before mu when both are needed

	mu       sync.Mutex
	f        *os.File
	size     int64 // bytes written
	synced   int64 // bytes known to be on disk
	readOff  int64 // bytes already consumed
	records  int   // records written since the file was last emptied
	consumed int   // records consumed since then
	closed   bool
}

// OpenSpool opens (creating if needed) the spool file at path. A torn or corrupt tail, which a crash in
// the middle of an append leaves, is logged and cut off; every intact record before it stays to be read.
func OpenSpool(path string, log *slog.Logger) (*Spool, error) {
	if log == nil {
		log = slog.Default()
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("followed: open spool: %w", err)
	}
	good, records, scanErr := scanSpool(f)
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("followed: open spool: %w", err)
	}
	if scanErr != nil {
		log.Warn("spool: corrupt tail skipped", "path", path, "offset", good, "bytes_dropped", st.Size()-good,
			"records_kept", records, "err", scanErr)
		if err := f.Truncate(good); err != nil {
			f.Close()
			return nil, fmt.Errorf("followed: cut spool tail at %d: %w", good, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, fmt.Errorf("followed: cut spool tail at %d: %w", good, err)
		}
	}
	return &Spool{path: path, log: log, f: f, size: good, synced: good, records: records}, nil
}

// scanSpool reads records from the start and returns the end of the last intact one, how many there
// are, and why it stopped early (nil at a clean end of file).
func scanSpool(f *os.File) (good int64, records int, err error) {
	br := bufio.NewReaderSize(io.NewSectionReader(f, 0, 1<<62), 1<<16)
	var head [spoolHeader]byte
	var payload []byte
	for {
		if _, err := io.ReadFull(br, head[:]); err != nil {
			if err == io.EOF {
				return good, records, nil
			}
			return good, records, fmt.Errorf("%w: short header: %v", errSpoolCorrupt, err)
		}
		n := binary.LittleEndian.Uint32(head[:4])
		if n == 0 || n > SpoolMaxRecord {
			return good, records, fmt.Errorf("%w: length %d", errSpoolCorrupt, n)
		}
		if cap(payload) < int(n) {
			payload = make([]byte, n)
		}
		payload = payload[:n]
		if _, err := io.ReadFull(br, payload); err != nil {
			return good, records, fmt.Errorf("%w: short payload: %v", errSpoolCorrupt, err)
		}
		if _, err := decodeRecord(head, payload); err != nil {
			return good, records, err
		}
		good += spoolHeader + int64(n)
		records++
	}
}

// decodeRecord checks a record's CRC and decodes its event.
func decodeRecord(head [spoolHeader]byte, payload []byte) (Event, error) {
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(head[4:]) {
		return Event{}, fmt.Errorf("%w: checksum mismatch", errSpoolCorrupt)
	}
	var ev Event
	if err := json.Unmarshal(payload, &ev); err != nil {
		return Event{}, fmt.Errorf("%w: %v", errSpoolCorrupt, err)
	}
	if ev.ID == "" || ev.MessageID == "" {
		return Event{}, fmt.Errorf("%w: event without id or message", errSpoolCorrupt)
	}
	return ev, nil
}

// decodeRecords decodes up to max whole records at the start of b and returns them with the number of
// bytes they take; err says why it stopped before the end of b and before max, if it did.
func decodeRecords(b []byte, max int) (evs []Event, used int, err error) {
	for used < len(b) && len(evs) < max {
		rest := b[used:]
		if len(rest) < spoolHeader {
			return evs, used, fmt.Errorf("%w: short header", errSpoolCorrupt)
		}
		head := [spoolHeader]byte(rest[:spoolHeader])
		n := binary.LittleEndian.Uint32(head[:4])
		if n == 0 || n > SpoolMaxRecord {
			return evs, used, fmt.Errorf("%w: length %d", errSpoolCorrupt, n)
		}
		if len(rest)-spoolHeader < int(n) {
			return evs, used, fmt.Errorf("%w: short payload", errSpoolCorrupt)
		}
		ev, err := decodeRecord(head, rest[spoolHeader:spoolHeader+int(n)])
		if err != nil {
			return evs, used, err
		}
		evs = append(evs, ev)
		used += spoolHeader + int(n)
	}
	return evs, used, nil
}

// encodeRecords appends evs to dst as spool records.
func encodeRecords(dst []byte, evs []Event) ([]byte, error) {
	for _, ev := range evs {
		payload, err := json.Marshal(ev)
		if err != nil {
			return dst, fmt.Errorf("followed: encode event %s: %w", ev.ID, err)
		}
		if len(payload) > SpoolMaxRecord {
			return dst, fmt.Errorf("followed: event %s is %d bytes, %w", ev.ID, len(payload), errRecordTooLarge)
		}
		dst = frameRecord(dst, payload)
	}
	return dst, nil
}

// frameRecord appends payload to dst behind its length and checksum.
func frameRecord(dst, payload []byte) []byte {
	var head [spoolHeader]byte
	binary.LittleEndian.PutUint32(head[:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(head[4:], crc32.Checksum(payload, castagnoli))
	return append(append(dst, head[:]...), payload...)
}

// Append writes evs and returns once they are on disk. Concurrent appends share an fsync: whoever
// syncs covers everything written before it, so the others find their records already durable.
func (s *Spool) Append(ctx context.Context, evs []Event) error {
	if len(evs) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("followed: spool %d events: %w", len(evs), err)
	}
	buf, err := encodeRecords(make([]byte, 0, 512*len(evs)), evs)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrSpoolClosed
	}
	if _, err := s.f.WriteAt(buf, s.size); err != nil {
		// Cut whatever part was written, so that the next record starts on a boundary.
		terr := s.f.Truncate(s.size)
		s.mu.Unlock()
		return fmt.Errorf("followed: spool %d events: %w", len(evs), errors.Join(err, terr))
	}
	s.size += int64(len(buf))
	s.records += len(evs)
	end := s.size
	s.mu.Unlock()
	return s.sync(end)
}

// sync makes the first end bytes durable, unless a concurrent sync already did.
func (s *Spool) sync(end int64) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.mu.Lock()
	if s.synced >= end || s.closed { // a later sync, or Close, covered these bytes
		s.mu.Unlock()
		return nil
	}
	target := s.size
	s.mu.Unlock()
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("followed: sync spool: %w", err)
	}
	s.mu.Lock()
	s.synced = target
	s.mu.Unlock()
	return nil
}

// SpoolBatch is a run of records read from the spool; pass it to Consume once its events are stored.
type SpoolBatch struct {
	Events []Event
	end    int64
	count  int
}

// Read returns up to max durable records after those already consumed, oldest first; an empty batch
// means nothing is waiting.
func (s *Spool) Read(max int) (SpoolBatch, error) {
	s.mu.Lock()
	off, limit := s.readOff, s.synced
	s.mu.Unlock()
	if off >= limit {
		return SpoolBatch{end: off}, nil
	}
	chunk := min(limit-off, int64(max)*1024+spoolHeader+SpoolMaxRecord)
	buf := make([]byte, chunk)
	if _, err := s.f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return SpoolBatch{}, fmt.Errorf("followed: read spool at %d: %w", off, err)
	}
	evs, used, err := decodeRecords(buf, max)
	if len(evs) == 0 && err != nil {
		// Only a damaged disk gets here (appends write whole records): skip the rest of what is durable
		// rather than stop replaying for good.
		s.log.Error("spool: unreadable records skipped", "path", s.path, "offset", off, "bytes", limit-off, "err", err)
		return SpoolBatch{end: limit}, nil
	}
	return SpoolBatch{Events: evs, end: off + int64(used), count: len(evs)}, nil
}

// Consume marks a batch as stored. When everything written has been consumed the file is emptied, so a
// spool costs disk space only while the store is behind.
func (s *Spool) Consume(b SpoolBatch) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if b.end > s.readOff {
		s.readOff = b.end
		s.consumed += b.count
	}
	if s.closed || s.readOff < s.size || s.synced < s.size {
		return nil
	}
	if err := s.f.Truncate(0); err != nil {
		return fmt.Errorf("followed: empty spool: %w", err)
	}
	s.size, s.synced, s.readOff, s.records, s.consumed = 0, 0, 0, 0, 0
	return nil
}

// Pending returns how many records, and bytes, wait to be stored.
func (s *Spool) Pending() (records int, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.records - s.consumed, s.size - s.readOff
}

// Close syncs and closes the file; the records still pending are read again at the next OpenSpool.
func (s *Spool) Close() error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.f.Sync()
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("followed: close spool: %w", err)
	}
	return nil
}
