package main

import (
	"bufio"
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

	"github.com/gorilla/websocket"
)

// process is Engage running as its own OS process, as in production.
type process struct {
	cmd  *exec.Cmd
	addr string
	logs lockedBuffer
}

// buildEngage compiles this command once for the test.
func buildEngage(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "engage")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func startProcess(t *testing.T, bin, dataDir string) *process {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "ENGAGE_ADDR=127.0.0.1:0", "ENGAGE_DATA_DIR="+dataDir, "ENGAGE_SHUTDOWN_GRACE=10s")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd}
	t.Cleanup(func() { p.stop(t) })
	lines := bufio.NewScanner(stderr)
	for lines.Scan() {
		var l struct{ Msg, Addr string }
		if json.Unmarshal(lines.Bytes(), &l) == nil && l.Msg == "engage listening" {
			p.addr = l.Addr
			break
		}
	}
	if p.addr == "" {
		t.Fatalf("engage did not start: %v", lines.Err())
	}
	go io.Copy(&p.logs, stderr) // keep the pipe drained, and the logs for a failure
	return p
}

func (p *process) stop(t *testing.T) {
	if p.cmd.ProcessState != nil {
		return
	}
	// A connection the client dialled but never used counts as active for up to 5s of shutdown.
	http.DefaultClient.CloseIdleConnections()
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("engage at %s exited: %v\n%s", p.addr, err, p.logs.String())
		}
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		t.Errorf("engage at %s did not stop on SIGTERM", p.addr)
	}
}

// subscribe opens a graphql-transport-ws alerts subscription as rep@contoso.com.
func subscribe(t *testing.T, addr, since string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}, HandshakeTimeout: 5 * time.Second}
	c, _, err := d.Dial("ws://"+addr+"/graphql", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.WriteJSON(map[string]any{"type": "connection_init", "payload": map[string]string{"X-Engage-User": "rep@contoso.com"}})
	vars := map[string]any{}
	if since != "" {
		vars["since"] = since
	}
	c.WriteJSON(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{
		"query": `subscription($since: String) { alerts(since: $since) { kind message { id } reminderId cursor } }`, "variables": vars}})
	if m := nextFrame(t, c); m["type"] != "connection_ack" {
		t.Fatalf("got %v, want connection_ack", m)
	}
	return c
}

func nextFrame(t *testing.T, c *websocket.Conn) map[string]any {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		var m map[string]any
		if err := c.ReadJSON(&m); err != nil {
			t.Fatalf("read: %v", err)
		}
		switch m["type"] {
		case "ping":
			c.WriteJSON(map[string]any{"type": "pong"})
		case "pong", "ka":
		default:
			return m
		}
	}
}

type frameAlert struct {
	Kind       string
	Message    struct{ ID string }
	ReminderID *string
	Cursor     string
}

func nextAlert(t *testing.T, c *websocket.Conn) frameAlert {
	t.Helper()
	m := nextFrame(t, c)
	b, _ := json.Marshal(m["payload"])
	var p struct{ Data struct{ Alerts frameAlert } }
	if m["type"] != "next" || json.Unmarshal(b, &p) != nil {
		t.Fatalf("got %v, want an alert", m)
	}
	return p.Data.Alerts
}

// countAlerts counts rep's stored alerts of one kind about one message.
func countAlerts(t *testing.T, addr, kind, messageID string) int {
	t.Helper()
	var out struct {
		Alerts struct {
			Edges []struct{ Node frameAlert }
		}
	}
	b, _ := json.Marshal(post(t, addr, `{ alerts(first: 100) { edges { node { kind message { id } reminderId cursor } } } }`, nil))
	json.Unmarshal(b, &out)
	n := 0
	for _, e := range out.Alerts.Edges {
		if e.Node.Kind == kind && e.Node.Message.ID == messageID {
			n++
		}
	}
	return n
}

var pixelRe = regexp.MustCompile(`<img src="([^"]+/t/o/[^"]+)"`)

func TestAlertsAcrossTwoProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs two Engage processes")
	}
	bin := buildEngage(t)
	dir := t.TempDir()
	a := startProcess(t, bin, dir)
	b := startProcess(t, bin, dir) // the same SQLite file and tracking key
	subA, subB := subscribe(t, a.addr, ""), subscribe(t, b.addr, "")

	data := post(t, a.addr, `mutation { followMessage(input: {subject: "Deal", html: "<p>Hi</p>", recipients: [{email: "ann@fabrikam.com"}]}) { id renders { html } } }`, nil)
	msg := data["followMessage"].(map[string]any)
	id := msg["id"].(string)
	pixel := pixelRe.FindStringSubmatch(msg["renders"].([]any)[0].(map[string]any)["html"].(string))[1]
	path := pixel[strings.Index(pixel, "/t/o/"):]

	// 100 concurrent hits on one message, spread over both processes: exactly one FIRST_OPEN.
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			addr := []string{a.addr, b.addr}[i%2]
			req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
			req.Header.Set("User-Agent", "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17126; Pro)")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}()
	}
	wg.Wait()
	for name, sub := range map[string]*websocket.Conn{"A": subA, "B": subB} {
		if al := nextAlert(t, sub); al.Kind != "FIRST_OPEN" || al.Message.ID != id {
			t.Fatalf("subscriber on %s got %+v", name, al)
		}
	}
	// A reminder both schedulers compete for fires once, and is the next alert either subscriber sees.
	rem := post(t, a.addr, `mutation($m: ID!, $at: Time!) { setReminder(messageId: $m, kind: ANYWAY, at: $at) { id } }`,
		map[string]any{"m": id, "at": time.Now().Add(1500 * time.Millisecond)})["setReminder"].(map[string]any)["id"].(string)
	var last string
	for name, sub := range map[string]*websocket.Conn{"A": subA, "B": subB} {
		al := nextAlert(t, sub)
		if al.Kind != "REMINDER" || al.ReminderID == nil || *al.ReminderID != rem {
			t.Fatalf("subscriber on %s: next alert %+v, want the reminder (a second FIRST_OPEN?)", name, al)
		}
		last = al.Cursor
	}
	if n := countAlerts(t, b.addr, "FIRST_OPEN", id); n != 1 {
		t.Fatalf("%d FIRST_OPEN alerts stored, want 1", n)
	}
	if n := countAlerts(t, a.addr, "REMINDER", id); n != 1 {
		t.Fatalf("%d REMINDER alerts stored, want 1", n)
	}

	// A reminder due while every instance is down fires once after restart; the client resumes from its cursor.
	rem2 := post(t, a.addr, `mutation($m: ID!, $at: Time!) { setReminder(messageId: $m, kind: NO_REPLY_BY, at: $at) { id } }`,
		map[string]any{"m": id, "at": time.Now().Add(time.Second)})["setReminder"].(map[string]any)["id"].(string)
	a.stop(t)
	b.stop(t)
	time.Sleep(1500 * time.Millisecond) // past the due time, with nothing running
	a2, b2 := startProcess(t, bin, dir), startProcess(t, bin, dir)
	resumed := subscribe(t, b2.addr, last)
	if al := nextAlert(t, resumed); al.Kind != "REMINDER" || al.ReminderID == nil || *al.ReminderID != rem2 {
		t.Fatalf("after restart: %+v, want the reminder that fell due while down", al)
	}
	var reminders struct{ Reminders []struct{ ID, State string } }
	raw, _ := json.Marshal(post(t, a2.addr, `{ reminders { id state } }`, nil))
	json.Unmarshal(raw, &reminders)
	states := fmt.Sprint(reminders.Reminders)
	if !strings.Contains(states, rem2+" FIRED") || strings.Count(states, "FIRED") != 2 {
		t.Fatalf("reminders %s", states)
	}
	if n := countAlerts(t, a2.addr, "REMINDER", id); n != 2 {
		t.Fatalf("%d REMINDER alerts stored, want 2", n)
	}
}
