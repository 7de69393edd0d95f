package followed

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func spoolEvent(id string, i int) Event {
	return Event{ID: id, MessageID: fmt.Sprintf("m%d", i%3), Kind: Opened, At: time.UnixMilli(int64(1_700_000_000_000 + i)).UTC(),
		Recipient: i % 2, Link: -1, IP: "192.0.2.1", UserAgent: "Mozilla/5.0 (Windows NT 10.0) Outlook", Method: "GET",
		Device: Device{Type: DeviceDesktop, OS: "Windows", Client: "Outlook"}}
}

// readAll reads and consumes everything durable in s, in batches of max.
func readAll(t *testing.T, s *Spool, max int) []Event {
	t.Helper()
	var out []Event
	for {
		b, err := s.Read(max)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Events) > max {
			t.Fatalf("read %d events, asked for at most %d", len(b.Events), max)
		}
		if err := s.Consume(b); err != nil {
			t.Fatal(err)
		}
		if len(b.Events) == 0 {
			return out
		}
		out = append(out, b.Events...)
	}
}

func TestSpoolConcurrentAppendsReopenInOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.log")
	s, err := OpenSpool(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 16, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := s.Append(context.Background(), []Event{spoolEvent(fmt.Sprintf("w%02d-%03d", w, i), i)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n, _ := s.Pending(); n != writers*each {
		t.Fatalf("pending %d, want %d", n, writers*each)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(context.Background(), []Event{spoolEvent("late", 0)}); err != ErrSpoolClosed {
		t.Fatalf("append after close: %v, want ErrSpoolClosed", err)
	}

	s, err = OpenSpool(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := readAll(t, s, 37)
	if len(got) != writers*each {
		t.Fatalf("read %d events, want %d", len(got), writers*each)
	}
	// Each writer's events come back in the order it appended them, each exactly once.
	next := map[string]int{}
	for _, ev := range got {
		w, i, _ := strings.Cut(ev.ID, "-")
		if want := fmt.Sprintf("%03d", next[w]); i != want {
			t.Fatalf("writer %s: got event %s, want %s", w, i, want)
		}
		next[w]++
		if want := spoolEvent(ev.ID, next[w]-1); !reflect.DeepEqual(ev, want) {
			t.Fatalf("event changed in the spool:\n got %+v\nwant %+v", ev, want)
		}
	}
	if st, err := os.Stat(path); err != nil || st.Size() != 0 {
		t.Fatalf("spool not emptied once consumed: %v %v", st.Size(), err)
	}
	if n, bytes := s.Pending(); n != 0 || bytes != 0 {
		t.Fatalf("pending %d records, %d bytes after consuming all", n, bytes)
	}
}

func TestSpoolCorruptTailIsSkipped(t *testing.T) {
	tests := []struct {
		name   string
		damage func(b []byte) []byte // b is the file holding the good records
	}{
		{"torn header", func(b []byte) []byte { return append(b, 0x41, 0x00, 0x00) }},
		{"torn payload", func(b []byte) []byte {
			rec, _ := encodeRecords(nil, []Event{spoolEvent("torn", 9)})
			return append(b, rec[:len(rec)-5]...)
		}},
		{"checksum mismatch", func(b []byte) []byte {
			rec, _ := encodeRecords(nil, []Event{spoolEvent("flipped", 9)})
			rec[len(rec)-3] ^= 0xff
			return append(b, rec...)
		}},
		{"absurd length", func(b []byte) []byte { return append(b, 0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4, 5) }},
		{"zero length", func(b []byte) []byte { return append(b, make([]byte, 64)...) }},
		{"valid frame, not an event", func(b []byte) []byte {
			return frameRecord(b, []byte(`{"ID":""}`))
		}},
		{"good record after garbage is not trusted", func(b []byte) []byte {
			rec, _ := encodeRecords(nil, []Event{spoolEvent("after", 9)})
			return append(append(b, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0, 1), rec...)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "spool.log")
			var good []Event
			for i := range 5 {
				good = append(good, spoolEvent(fmt.Sprintf("e%d", i), i))
			}
			b, err := encodeRecords(nil, good)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, tt.damage(b), 0o600); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			s, err := OpenSpool(path, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if n := strings.Count(logs.String(), "corrupt tail skipped"); n != 1 {
				t.Fatalf("%d log lines about the tail, want 1:\n%s", n, logs.String())
			}
			// New records land after the intact ones, not after the garbage.
			extra := spoolEvent("new", 7)
			if err := s.Append(context.Background(), []Event{extra}); err != nil {
				t.Fatal(err)
			}
			if got, want := readAll(t, s, 2), append(good, extra); !reflect.DeepEqual(got, want) {
				t.Fatalf("read\n %+v\nwant\n %+v", got, want)
			}
		})
	}
}

func TestSpoolCleanFileLogsNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.log")
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	for range 2 {
		s, err := OpenSpool(path, log)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Append(context.Background(), []Event{spoolEvent("a", 1), spoolEvent("b", 2)}); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if logs.Len() != 0 {
		t.Fatalf("a clean spool logged: %s", logs.String())
	}
	s, err := OpenSpool(path, log)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n, _ := s.Pending(); n != 4 {
		t.Fatalf("pending %d after two runs of two appends, want 4", n)
	}
}

func spoolSeeds(f *testing.F) {
	good, _ := encodeRecords(nil, []Event{spoolEvent("a", 1), spoolEvent("b", 2)})
	f.Add(good)
	f.Add(good[:len(good)-4])
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, '{'})
	f.Add(frameRecord(good, []byte(`{"ID":"x","MessageID":"m","At":"2026-01-02T03:04:05.678+01:00"}`)))
}

// FuzzSpoolRecords feeds arbitrary bytes to the decoder: it may not panic, must account for the bytes
// it used, and the records it decodes must re-encode to events that decode the same.
func FuzzSpoolRecords(f *testing.F) {
	spoolSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, used, err := decodeRecords(b, len(b)+1)
		if used < 0 || used > len(b) || (err == nil && used != len(b)) {
			t.Fatalf("used %d of %d, err %v", used, len(b), err)
		}
		again, err := encodeRecords(nil, evs)
		if err != nil {
			t.Fatal(err)
		}
		evs2, _, err := decodeRecords(again, len(evs)+1)
		if err != nil || len(evs) != len(evs2) || (len(evs) > 0 && !reflect.DeepEqual(evs, evs2)) {
			t.Fatalf("re-encoded records decode differently: %v", err)
		}
	})
}

// FuzzOpenSpool writes arbitrary bytes as a spool file: OpenSpool must keep exactly the intact prefix
// the decoder finds, whatever follows it.
func FuzzOpenSpool(f *testing.F) {
	spoolSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, used, _ := decodeRecords(b, len(b)+1)

		path := filepath.Join(t.TempDir(), "spool.log")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := OpenSpool(path, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if n, size := s.Pending(); n != len(evs) || size != int64(used) {
			t.Fatalf("open kept %d records in %d bytes, decoder found %d in %d", n, size, len(evs), used)
		}
	})
}
