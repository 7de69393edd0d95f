package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// boot runs Engage as main does, on a free loopback port, and returns its address and a stop function
// that cancels the run and returns its error.
func boot(t *testing.T, dataDir string, logs io.Writer) (string, func() error) {
	t.Helper()
	env := map[string]string{"ENGAGE_ADDR": "127.0.0.1:0", "ENGAGE_DATA_DIR": dataDir, "ENGAGE_SHUTDOWN_GRACE": "5s"}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, func(k string) string { return env[k] }, logs, ready) }()
	select {
	case addr := <-ready:
		return addr, func() error {
			cancel()
			select {
			case err := <-done:
				return err
			case <-time.After(20 * time.Second):
				t.Fatal("engage did not stop")
				return nil
			}
		}
	case err := <-done:
		t.Fatalf("engage did not start: %v", err)
	}
	return "", nil
}

func post(t *testing.T, addr, query string, vars map[string]any) map[string]any {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest("POST", "http://"+addr+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Engage-User", "rep@contoso.com")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if out["errors"] != nil {
		t.Fatalf("errors: %v", out["errors"])
	}
	return out["data"].(map[string]any)
}

func TestDataSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	addr, stop := boot(t, dir, io.Discard)
	data := post(t, addr, `mutation { followMessage(input: {subject: "Kept", html: "<p>x</p>",
		recipients: [{email: "a@b.com"}]}) { id renders { html } } }`, nil)
	fm := data["followMessage"].(map[string]any)
	id := fm["id"].(string)
	html := fm["renders"].([]any)[0].(map[string]any)["html"].(string)
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	addr, stop = boot(t, dir, io.Discard)
	defer stop()
	// The tracking key was kept too: the pixel sent before the restart still counts.
	pixel := html[strings.Index(html, `<img src="`)+len(`<img src="`):] // the honeypot link comes first
	pixel = pixel[:strings.Index(pixel, `"`)]
	pixel = strings.Replace(pixel, pixel[len("http://"):strings.Index(pixel, "/t/")], addr, 1)
	req, _ := http.NewRequest("GET", pixel, nil)
	// A mail client's agent: Go's own is a scripted client's, which Engage counts as a machine.
	req.Header.Set("User-Agent", "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17126; Pro)")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	data = post(t, addr, `query($id: ID!) { message(id: $id) { subject kpis { opens } } }`, map[string]any{"id": id})
	m := data["message"].(map[string]any)
	if m["subject"] != "Kept" || m["kpis"].(map[string]any)["opens"] != 1.0 {
		t.Fatalf("after restart: %v", m)
	}
}

func TestGracefulShutdown(t *testing.T) {
	logs := &lockedBuffer{}
	addr, stop := boot(t, t.TempDir(), logs)

	// A live subscription is closed cleanly, not cut.
	d := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}}
	c, _, err := d.Dial("ws://"+addr+"/graphql", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.WriteJSON(map[string]any{"type": "connection_init", "payload": map[string]any{"X-Engage-User": "rep@contoso.com"}})
	c.WriteJSON(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": "subscription { ticks(count: 60) }"}})
	for {
		var m map[string]any
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if err := c.ReadJSON(&m); err != nil {
			t.Fatal(err)
		}
		if m["type"] == "next" {
			break
		}
	}

	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
			t.Fatalf("subscription ended with %v, want a normal close", err)
		}
		break
	}
	if err := <-stopped; err != nil {
		t.Fatalf("run returned %v after shutdown", err)
	}
	if !strings.Contains(logs.String(), `"msg":"shutting down"`) {
		t.Fatalf("no shutdown log line in %s", logs.String())
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Fatal("still serving after shutdown")
	}
}

// TestStartFailureEndsTheRun starts Engage on a port that is taken: run returns the listen error once
// the loops started before it have stopped, rather than waiting for a signal that never comes.
func TestStartFailureEndsTheRun(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	env := map[string]string{"ENGAGE_ADDR": taken.Addr().String(), "ENGAGE_DATA_DIR": t.TempDir()}
	done := make(chan error, 1)
	go func() { done <- run(context.Background(), func(k string) string { return env[k] }, io.Discard) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "listen") {
			t.Fatalf("run: %v, want the listen error", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run still waiting after its listener failed")
	}
}
