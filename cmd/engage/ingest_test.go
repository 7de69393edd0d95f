package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests run the real binary, kill it or take its store away under load, and then read the SQLite
// file to check that every hit Engage acknowledged is stored exactly once. Each hit carries a unique
// User-Agent, so "once" is checked per request, not just in total.

// buildIngest compiles this command into a temporary directory.
func buildIngest(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the engage binary under load; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "engage")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// ingestProc is a running engage binary.
type ingestProc struct {
	cmd  *exec.Cmd
	addr string
	logs *lockedBuffer
	done chan error
}

func startIngestProc(t *testing.T, bin, dataDir string, env ...string) *ingestProc {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), append([]string{"ENGAGE_ADDR=127.0.0.1:0", "ENGAGE_DATA_DIR=" + dataDir,
		"ENGAGE_SHUTDOWN_GRACE=5s"}, env...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &ingestProc{cmd: cmd, logs: &lockedBuffer{}, done: make(chan error, 1)}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.logs.Write([]byte(line + "\n"))
			var m struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &m) == nil && m.Msg == "engage listening" {
				addrc <- m.Addr
			}
		}
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() { cmd.Process.Kill() })
	select {
	case p.addr = <-addrc:
	case err := <-p.done:
		t.Fatalf("engage exited before listening: %v\n%s", err, p.logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("engage did not start:\n%s", p.logs.String())
	}
	return p
}

// stop sends SIGTERM and waits for a clean exit.
func (p *ingestProc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("engage exited with %v:\n%s", err, p.logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("engage did not stop on SIGTERM")
	}
}

var ingestURL = regexp.MustCompile(`http://[^"]+/t/[oc]/[A-Za-z0-9_.~-]+`)

// targets follows n messages and returns their pixel and click paths.
func ingestTargets(t *testing.T, addr string, n int) (pixels, clicks []string) {
	t.Helper()
	for i := range n {
		data := post(t, addr, `mutation($s: String!) { followMessage(input: {subject: $s,
			html: "<p>See <a href=\"https://example.com/offer\">the offer</a></p>", recipients: [{email: "a@fabrikam.com"}]}) {
			renders { html } } }`, map[string]any{"s": fmt.Sprintf("Ingest %d", i)})
		html := data["followMessage"].(map[string]any)["renders"].([]any)[0].(map[string]any)["html"].(string)
		for _, u := range ingestURL.FindAllString(html, -1) {
			path := u[strings.Index(u, "/t/"):]
			if strings.HasPrefix(path, "/t/o/") {
				pixels = append(pixels, path)
			} else {
				clicks = append(clicks, path)
			}
		}
	}
	if len(pixels) != n || len(clicks) != n {
		t.Fatalf("%d pixels and %d links for %d messages", len(pixels), len(clicks), n)
	}
	return pixels, clicks
}

// hitLoad sends pixel and click hits, each with a unique User-Agent, until stop is closed, and keeps the
// agents of the hits Engage acknowledged (a GIF or a redirect) and counts those it did not.
type hitLoad struct {
	mu      sync.Mutex
	acked   map[string]bool
	refused int // answered, but not with the GIF or the redirect
	unsent  int // no answer at all (the process was killed under it)
	wg      sync.WaitGroup
	stopc   chan struct{}
}

func startLoad(addr string, pixels, clicks []string, workers int) *hitLoad {
	l := &hitLoad{acked: map[string]bool{}, stopc: make(chan struct{})}
	tr := &http.Transport{MaxIdleConnsPerHost: workers}
	client := &http.Client{Transport: tr, Timeout: 15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-l.stopc:
					return
				default:
				}
				url, want := "http://"+addr+pixels[i%len(pixels)], http.StatusOK
				if i%2 == 1 {
					url, want = "http://"+addr+clicks[i%len(clicks)], http.StatusFound
				}
				ua := fmt.Sprintf("ingest-test/%d-%d", w, i)
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				req.Header.Set("User-Agent", ua)
				res, err := client.Do(req)
				if err != nil {
					l.mu.Lock()
					l.unsent++
					l.mu.Unlock()
					time.Sleep(10 * time.Millisecond) // the server is gone; do not spin
					continue
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				l.mu.Lock()
				if res.StatusCode == want {
					l.acked[ua] = true
				} else {
					l.refused++
				}
				l.mu.Unlock()
			}
		}()
	}
	return l
}

func (l *hitLoad) stop() {
	close(l.stopc)
	l.wg.Wait()
}

// storedAgents reads the events table directly and fails on any agent stored twice or counters that
// disagree with the rows.
func storedAgents(t *testing.T, dataDir string) map[string]bool {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.ToSlash(filepath.Join(dataDir, "engage.db")))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT user_agent, count(*) FROM events GROUP BY user_agent")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var ua string
		var n int
		if err := rows.Scan(&ua, &n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("hit %s stored %d times", ua, n)
		}
		out[ua] = true
	}
	var events, counted int
	if err := db.QueryRow(`SELECT (SELECT count(*) FROM events),
		(SELECT coalesce(sum(opens + machine_opens + clicks + machine_clicks), 0) FROM counters)`).Scan(&events, &counted); err != nil {
		t.Fatal(err)
	}
	if events != counted {
		t.Errorf("%d events stored, counters add up to %d", events, counted)
	}
	return out
}

// waitStored polls (through a second connection, as an operator would) until the events table holds at
// least n rows or the process's spool is empty; the deadline only bounds a failing test.
func waitStored(t *testing.T, dataDir string, n int) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.ToSlash(filepath.Join(dataDir, "engage.db"))+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var got int
		if err := db.QueryRow("SELECT count(*) FROM events").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d acknowledged hits stored after a minute", got, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func checkAcked(t *testing.T, l *hitLoad, stored map[string]bool) {
	t.Helper()
	missing := 0
	for ua := range l.acked {
		if !stored[ua] {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged hits missing from the store", missing, len(l.acked))
	}
	t.Logf("%d hits acknowledged, all stored once; %d stored in total (the rest were answered to no one); %d refused, %d unanswered",
		len(l.acked), len(stored), l.refused, l.unsent)
}

func TestKillUnderLoadLosesNoAcknowledgedHit(t *testing.T) {
	bin := buildIngest(t)
	tests := []struct {
		name   string
		outage bool // kill while another process holds the store's write lock, so hits sit in the spool
	}{
		{"healthy store", false},
		{"during a store outage", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := startIngestProc(t, bin, dir, "ENGAGE_SPOOL_AFTER=200ms")
			pixels, clicks := ingestTargets(t, p.addr, 20)
			l := startLoad(p.addr, pixels, clicks, 32)
			time.Sleep(time.Second)
			release := func() {}
			if tt.outage {
				release = lockStore(t, dir)
				time.Sleep(time.Second)
			} else {
				time.Sleep(time.Second)
			}
			if err := p.cmd.Process.Kill(); err != nil { // SIGKILL: no flush, no deferred close
				t.Fatal(err)
			}
			<-p.done
			l.stop()
			release()
			if len(l.acked) == 0 {
				t.Fatal("no hit acknowledged before the kill")
			}
			if tt.outage && !strings.Contains(p.logs.String(), "spooling tracking events") {
				t.Fatalf("nothing spooled during the outage:\n%s", p.logs.String())
			}

			p = startIngestProc(t, bin, dir)
			waitStored(t, dir, len(l.acked))
			p.stop(t)
			checkAcked(t, l, storedAgents(t, dir))
			if l.refused > 0 {
				t.Fatalf("%d hits answered with something other than the GIF or the redirect", l.refused)
			}
		})
	}
}

// lockStore holds SQLite's write lock from another connection, as a stuck process or a long
// maintenance job would, until the returned function is called.
func lockStore(t *testing.T, dataDir string) func() {
	t.Helper()
	locker, err := sql.Open("sqlite", "file:"+filepath.ToSlash(filepath.Join(dataDir, "engage.db"))+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := locker.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release := func() {
		once.Do(func() {
			if _, err := conn.ExecContext(context.Background(), "COMMIT"); err != nil {
				t.Error(err)
			}
			conn.Close()
			locker.Close()
		})
	}
	t.Cleanup(release)
	return release
}

func TestStoreOutageServesEveryHitAndStoresItAfter(t *testing.T) {
	bin := buildIngest(t)
	outage := 2 * time.Second
	if v := os.Getenv("ENGAGE_TEST_OUTAGE"); v != "" { // e.g. 10s for the figure in the issue
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("ENGAGE_TEST_OUTAGE=%q: %v", v, err)
		}
		outage = d
	}
	dir := t.TempDir()
	p := startIngestProc(t, bin, dir, "ENGAGE_SPOOL_AFTER=200ms")
	pixels, clicks := ingestTargets(t, p.addr, 20)
	l := startLoad(p.addr, pixels, clicks, 32)
	time.Sleep(500 * time.Millisecond)

	// The outage: another process holds SQLite's write lock, so Engage's commits cannot proceed.
	release := lockStore(t, dir)
	l.mu.Lock()
	before := len(l.acked)
	l.mu.Unlock()
	time.Sleep(outage)
	l.mu.Lock()
	during := len(l.acked) - before
	l.mu.Unlock()
	release()
	time.Sleep(500 * time.Millisecond)
	l.stop()

	if l.refused > 0 || l.unsent > 0 {
		t.Fatalf("during the outage %d hits were refused and %d unanswered", l.refused, l.unsent)
	}
	if during == 0 {
		t.Fatal("no hit answered during the outage")
	}
	waitStored(t, dir, len(l.acked))
	p.stop(t)
	if !strings.Contains(p.logs.String(), "spooling tracking events") || !strings.Contains(p.logs.String(), "spool replayed into the store") {
		t.Fatalf("the outage left no spool and replay log lines:\n%s", p.logs.String())
	}
	t.Logf("outage of %s: %d hits served during it", outage, during)
	checkAcked(t, l, storedAgents(t, dir))
}
