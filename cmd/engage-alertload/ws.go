package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

const subscription = `subscription { alerts { kind message { id } at cursor } }`

// subscribe opens a graphql-transport-ws alerts subscription as user and returns once it is acknowledged.
func subscribe(ctx context.Context, addr, user string) (*websocket.Conn, error) {
	d := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}, HandshakeTimeout: 10 * time.Second,
		ReadBufferSize: 1024, WriteBufferSize: 1024}
	c, _, err := d.DialContext(ctx, "ws://"+addr+"/graphql", nil)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	c.WriteJSON(map[string]any{"type": "connection_init", "payload": map[string]string{"X-Engage-User": user}})
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var ack struct{ Type string }
	if err := c.ReadJSON(&ack); err != nil || ack.Type != "connection_ack" {
		c.Close()
		return nil, fmt.Errorf("connection_init as %s: %q, %v", user, ack.Type, err)
	}
	c.SetReadDeadline(time.Time{})
	if err := c.WriteJSON(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]string{"query": subscription}}); err != nil {
		c.Close()
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	return c, nil
}

type frame struct {
	Type    string
	Payload struct {
		Data struct {
			Alerts struct {
				Kind    string
				Message struct{ ID string }
			}
		}
	}
}

// serve reads frames until the connection ends, answering pings so the server keeps it; alerts, when
// wanted, go to alerts with their arrival time.
func serve(c *websocket.Conn, alerts chan<- arrival) {
	for {
		var f frame
		if err := c.ReadJSON(&f); err != nil {
			return
		}
		switch f.Type {
		case "ping":
			c.WriteJSON(map[string]string{"type": "pong"})
		case "next":
			if alerts != nil {
				alerts <- arrival{message: f.Payload.Data.Alerts.Message.ID, kind: f.Payload.Data.Alerts.Kind, at: time.Now()}
			}
		}
	}
}

type arrival struct {
	message, kind string
	at            time.Time
}

// openIdle opens n idle subscriptions, each as its own user, and keeps them until ctx is done.
func openIdle(ctx context.Context, addr string, n, dialers int) (int, error) {
	var opened atomic.Int64
	var firstErr error
	var once sync.Once
	sem := make(chan struct{}, dialers)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			c, err := subscribe(ctx, addr, fmt.Sprintf("idle-%d@load.test", i))
			if err != nil {
				once.Do(func() { firstErr = err })
				return
			}
			opened.Add(1)
			context.AfterFunc(ctx, func() { c.Close() })
			go serve(c, nil)
		}()
	}
	wg.Wait()
	return int(opened.Load()), firstErr
}

var pixelRe = regexp.MustCompile(`<img src="[^"]+(/t/o/[^"]+)"`)

// timeHits follows n messages one at a time, hits each one's pixel on hitAddr and times the FIRST_OPEN
// frame on a subscription held on subAddr.
func timeHits(ctx context.Context, subAddr, hitAddr string, n int) ([]time.Duration, error) {
	const user = "load@contoso.com"
	c, err := subscribe(ctx, subAddr, user)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	arrivals := make(chan arrival, 16)
	go serve(c, arrivals)
	time.Sleep(200 * time.Millisecond) // the subscribe frame is processed
	client := &http.Client{Timeout: 10 * time.Second}
	var lat []time.Duration
	for i := range n {
		id, path, err := follow(ctx, client, subAddr, user, i)
		if err != nil {
			return nil, err
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+hitAddr+path, nil)
		req.Header.Set("User-Agent", "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17126; Pro)")
		start := time.Now()
		res, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("pixel: %w", err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		timeout := time.After(10 * time.Second)
	wait:
		for {
			select {
			case a := <-arrivals:
				if a.message == id && a.kind == "FIRST_OPEN" {
					lat = append(lat, a.at.Sub(start))
					break wait
				}
			case <-timeout:
				return nil, fmt.Errorf("hit %d: no FIRST_OPEN frame within 10s", i)
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	return lat, nil
}

func follow(ctx context.Context, client *http.Client, addr, user string, i int) (id, pixelPath string, err error) {
	body, _ := json.Marshal(map[string]any{
		"query": `mutation($in: FollowMessageInput!) { followMessage(input: $in) { id renders { html } } }`,
		"variables": map[string]any{"in": map[string]any{"subject": fmt.Sprintf("Load %d", i), "html": "<p>Hi</p>",
			"recipients": []map[string]string{{"email": fmt.Sprintf("r%d@fabrikam.com", i)}}}},
	})
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+addr+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Engage-User", user)
	res, err := client.Do(req)
	if err != nil {
		return "", "", fmt.Errorf("followMessage: %w", err)
	}
	defer res.Body.Close()
	var out struct {
		Data struct {
			FollowMessage struct {
				ID      string
				Renders []struct{ HTML string }
			}
		}
		Errors []struct{ Message string }
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || len(out.Errors) > 0 || len(out.Data.FollowMessage.Renders) == 0 {
		return "", "", fmt.Errorf("followMessage: %v %+v", err, out.Errors)
	}
	m := pixelRe.FindStringSubmatch(out.Data.FollowMessage.Renders[0].HTML)
	if m == nil {
		return "", "", fmt.Errorf("followMessage: no pixel in %q", out.Data.FollowMessage.Renders[0].HTML)
	}
	return out.Data.FollowMessage.ID, strings.ReplaceAll(m[1], "&amp;", "&"), nil
}
