package server_test

import (
	"crypto/sha256"
	"io"
	"net/http"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
	"time"
)

// patternReader yields n deterministic bytes without holding them: a 64 KiB block, repeated with a shift.
type patternReader struct {
	block [64 << 10]byte
	off   int64
}

func newPatternReader() *patternReader {
	p := &patternReader{}
	for i := range p.block {
		p.block[i] = byte(i*31 + i>>8)
	}
	return p
}

func (p *patternReader) Read(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		i := int(p.off % int64(len(p.block)))
		k := copy(b[n:], p.block[i:])
		for j := n; j < n+k; j++ {
			b[j] ^= byte(p.off / int64(len(p.block)))
		}
		n += k
		p.off += int64(k)
	}
	return n, nil
}

// peakHeap samples HeapInuse until stop is called and returns the highest value seen.
func peakHeap() (stop func() uint64) {
	var mu sync.Mutex
	var peak uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			mu.Lock()
			peak = max(peak, ms.HeapInuse)
			mu.Unlock()
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-finished
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

// A 200 MiB file goes through a real multipart request, the GraphQL transport (to a temporary file)
// and the local drive while the heap stays within 50 MB of where it started; the file comes back whole.
func TestAttachmentUploadStreamsWithBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("200 MiB upload: skipped under -short")
	}
	const size = 200 << 20
	e := start(t, 256<<20)
	id := e.followTo(t, true, "ann@fabrikam.com")

	runtime.GC()
	debug.FreeOSMemory()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	stop := peakHeap()
	sent := sha256.New()
	r, a := e.upload(t, rep, id, "video.bin", size, io.TeeReader(newPatternReader(), sent), true)
	peak := stop()
	if len(r.Errors) > 0 || a.Size != size || !a.Followed {
		t.Fatalf("upload: %+v, %+v", r.Errors, a)
	}
	growth := int64(peak) - int64(before.HeapInuse)
	t.Logf("200 MiB upload: heap in use %.1f MB before, peak %.1f MB, growth %.1f MB",
		float64(before.HeapInuse)/1e6, float64(peak)/1e6, float64(growth)/1e6)
	if growth >= 50e6 {
		t.Fatalf("heap grew by %.1f MB during a 200 MiB upload, want under 50 MB", float64(growth)/1e6)
	}

	links := attachmentHrefRe.FindStringSubmatch(e.attachments(t, id).Message.Renders[0].HTML)
	if links == nil {
		t.Fatal("the render does not list the file")
	}
	res := get(t, "GET", links[1], outlookUA)
	res.Body.Close()
	res = get(t, "GET", res.Header.Get("Location"), outlookUA)
	defer res.Body.Close()
	got := sha256.New()
	n, err := io.Copy(got, res.Body)
	if err != nil || res.StatusCode != http.StatusOK || n != size || string(got.Sum(nil)) != string(sent.Sum(nil)) {
		t.Fatalf("download: %d, %d bytes, %v; the file did not come back whole", res.StatusCode, n, err)
	}
}
