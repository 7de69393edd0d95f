package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/engage-email/engage/alerts"
	"github.com/engage-email/engage/auth"
	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/graph"
	"github.com/engage-email/engage/machines"
	"github.com/engage-email/engage/server"
	"github.com/engage-email/engage/store/sqlite"
)

// labelledEngage is a real Engage that labels machines, behind a trusted proxy at 127.0.0.1 (so a
// test names the client's address in X-Forwarded-For), with the rules given.
type labelledEngage struct {
	*engage
	classifier *machines.Classifier
}

func startLabelled(t *testing.T, rules *machines.Rules) *labelledEngage {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	base := "http://" + ts.Listener.Addr().String()
	db := sqlite.OpenTemp(t)
	log := slog.New(server.LogHandler{Handler: slog.NewJSONHandler(io.Discard, nil)})
	keys, err := followed.LoadOrCreateKeyRing(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	devices, err := followed.NewDeviceParser()
	if err != nil {
		t.Fatal(err)
	}
	svc, err := followed.NewService(db, keys, base, followed.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	alertSvc := alerts.New(db, db, alerts.Options{Log: log, TailInterval: 50 * time.Millisecond, WithdrawInterval: 50 * time.Millisecond})
	if err := alertSvc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	rec := followed.NewRecorder(db, followed.RecorderOptions{Log: log, OnFirstOpen: alertSvc})
	go rec.Run(ctx)
	classifier := machines.NewClassifier(rules, nil)
	labels, err := followed.NewLabeller(classifier, db, followed.LabellerOptions{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	go labels.Run(ctx)
	srv, err := server.New(server.Options{TrustedProxies: []string{"127.0.0.1/32"}},
		server.Deps{Log: log, Auth: auth.NewLocal(nil), Ready: db.Ping,
			Resolver: &graph.Resolver{Followed: svc, Alerts: alertSvc},
			Keys:     keys, Devices: devices, Recorder: rec, Labels: labels})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv.Handler()
	ts.Start()
	t.Cleanup(func() { ts.Close(); cancel(); rec.Wait(); alertSvc.Wait() })
	return &labelledEngage{engage: &engage{URL: ts.URL, DB: db, Alerts: alertSvc}, classifier: classifier}
}

// rulesWithWindows returns the built-in rules with some windows changed, e.g. "click_after_send".
func rulesWithWindows(t *testing.T, windows map[string]string) *machines.Rules {
	t.Helper()
	js := string(machines.DefaultRulesJSON())
	for k, v := range windows {
		re := regexp.MustCompile(`"` + k + `": "[^"]*"`)
		if !re.MatchString(js) {
			t.Fatalf("no window %s in the built-in rules", k)
		}
		js = re.ReplaceAllString(js, `"`+k+`": "`+v+`"`)
	}
	r, err := machines.ParseRules([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// hit requests a tracking URL as a client at addr (through the trusted proxy) with agent ua.
func hit(t *testing.T, method, url, addr, ua string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, strings.ReplaceAll(url, "&amp;", "&"), nil)
	req.Header.Set("User-Agent", ua)
	if addr != "" {
		req.Header.Set("X-Forwarded-For", addr)
	}
	res, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

var honeypotRe = regexp.MustCompile(`<a href="([^"]+/t/h/[^"]+)" aria-hidden="true" tabindex="-1" style="display:none`)

type labelledMessage struct {
	id      string
	pixels  []string   // per recipient
	links   [][]string // per recipient, in link order
	honeypt []string   // per recipient
}

func (e *labelledEngage) follow(t *testing.T, emails ...string) labelledMessage {
	t.Helper()
	rcpts := make([]map[string]any, len(emails))
	for i, m := range emails {
		rcpts[i] = map[string]any{"email": m}
	}
	var out followedOut
	r := e.gql(t, "rep@contoso.com", followMutation, map[string]any{"in": map[string]any{"subject": "Offer", "individual": true,
		"html":       `<html><body><p>Hi</p><a href="https://contoso.example/offer">Offer</a> <a href="https://contoso.example/terms">Terms</a></body></html>`,
		"recipients": rcpts}}, &out)
	if r.code() != "" {
		t.Fatalf("follow: %+v", r.Errors)
	}
	m := labelledMessage{id: out.FollowMessage.ID}
	for _, rd := range out.FollowMessage.Renders {
		hp := honeypotRe.FindStringSubmatch(rd.HTML)
		px := pixelRe.FindStringSubmatch(rd.HTML)
		if hp == nil || px == nil {
			t.Fatalf("render without honeypot or pixel: %s", rd.HTML)
		}
		m.pixels, m.honeypt = append(m.pixels, px[1]), append(m.honeypt, hp[1])
		var ls []string
		for _, l := range hrefRe.FindAllStringSubmatch(rd.HTML, -1) {
			ls = append(ls, l[1])
		}
		m.links = append(m.links, ls)
	}
	return m
}

type labelledRead struct {
	Message struct {
		Kpis struct {
			Opens, UniqueOpens, Clicks, UniqueClicks, MachineOpens, MachineClicks int
			FirstOpenedAt                                                         *string
		}
		Links []struct {
			Index, Clicks, UniqueClicks int
		}
		Interactions struct {
			Edges []struct {
				Node interaction
			}
		}
	}
}

type interaction struct {
	ID, Kind                   string
	Recipient                  *struct{ Email string }
	LinkIndex                  *int
	Device                     struct{ Type, Client string }
	Machine                    bool
	MachineReason, MachineRule *string
}

// label renders an interaction's label as "human", "human/PROXIED/rule" or "machine/REASON/rule".
func (i interaction) label() string {
	if !i.Machine && i.MachineReason == nil {
		return "human"
	}
	kind, reason, rule := "human", "", ""
	if i.Machine {
		kind = "machine"
	}
	if i.MachineReason != nil {
		reason = *i.MachineReason
	}
	if i.MachineRule != nil {
		rule = *i.MachineRule
	}
	return kind + "/" + reason + "/" + rule
}

func (e *labelledEngage) read(t *testing.T, id string) labelledRead {
	t.Helper()
	var out labelledRead
	q := `query($id: ID!) { message(id: $id) { kpis { opens uniqueOpens clicks uniqueClicks machineOpens machineClicks firstOpenedAt }
		links { index clicks uniqueClicks }
		interactions(first: 100) { edges { node { id kind recipient { email } linkIndex device { type client }
			machine machineReason machineRule } } } } }`
	if r := e.gql(t, "rep@contoso.com", q, map[string]any{"id": id}, &out); r.code() != "" {
		t.Fatalf("read: %+v", r.Errors)
	}
	return out
}

// firstOpenAlerts counts the FIRST_OPEN alerts of a message.
func (e *labelledEngage) firstOpenAlerts(t *testing.T, id string) int {
	t.Helper()
	var out struct {
		Alerts struct {
			Edges []struct {
				Node struct {
					Kind    string
					Message struct{ ID string }
				}
			}
		}
	}
	if r := e.gql(t, "rep@contoso.com", `{ alerts(first: 100) { edges { node { kind message { id } } } } }`, nil, &out); r.code() != "" {
		t.Fatalf("alerts: %+v", r.Errors)
	}
	n := 0
	for _, a := range out.Alerts.Edges {
		if a.Node.Kind == "FIRST_OPEN" && a.Node.Message.ID == id {
			n++
		}
	}
	return n
}

const (
	appleMailUA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
	gmailUA     = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
	chromeUA    = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
)

// TestMachineLabelsEndToEnd: each open or click is labelled as it arrives; kpis, first-open alerts
// and link counters count people only, and interactions show the label with its reason and rule.
func TestMachineLabelsEndToEnd(t *testing.T) {
	// Clicks come long after sending here, as a person's do: the delivery-scan window is 1ms.
	e := startLabelled(t, rulesWithWindows(t, map[string]string{"click_after_send": "1ms"}))
	tests := []struct {
		name string
		// do makes the hits of one recipient of a fresh message (pixel, links, honeypot of its render).
		do         func(t *testing.T, pixel string, links []string, honeypot string)
		wantLabels []string // interactions oldest first
		wantKpis   string   // opens uniqueOpens clicks uniqueClicks machineOpens machineClicks
		wantFirst  int      // FIRST_OPEN alerts
	}{
		{
			name: "apple privacy proxy agent",
			do: func(t *testing.T, pixel string, _ []string, _ string) {
				hit(t, "GET", pixel, "17.58.101.12", "Mozilla/5.0")
			},
			wantLabels: []string{"machine/APPLE_PRIVACY_PROXY/apple-mpp-agent"},
			wantKpis:   "0 0 0 0 1 0",
		},
		{
			name: "apple proxy address behind a trusted proxy",
			do: func(t *testing.T, pixel string, _ []string, _ string) {
				hit(t, "GET", pixel, "17.58.101.12", appleMailUA)
			},
			wantLabels: []string{"machine/APPLE_PRIVACY_PROXY/apple-proxy-range"},
			wantKpis:   "0 0 0 0 1 0",
		},
		{
			name: "gmail image proxy is a person",
			do: func(t *testing.T, pixel string, _ []string, _ string) {
				hit(t, "GET", pixel, "66.249.84.1", gmailUA)
			},
			wantLabels: []string{"human/PROXIED/gmail-image-proxy"},
			wantKpis:   "1 1 0 0 0 0",
			wantFirst:  1,
		},
		{
			name: "ordinary outlook open",
			do: func(t *testing.T, pixel string, _ []string, _ string) {
				hit(t, "GET", pixel, "203.0.113.7", outlookUA)
			},
			wantLabels: []string{"human"},
			wantKpis:   "1 1 0 0 0 0",
			wantFirst:  1,
		},
		{
			name: "HEAD click is a scanner",
			do: func(t *testing.T, _ string, links []string, _ string) {
				if res := hit(t, "HEAD", links[0], "203.0.113.8", chromeUA); res.StatusCode != http.StatusFound {
					t.Fatalf("HEAD click: %d", res.StatusCode)
				}
			},
			wantLabels: []string{"machine/SECURITY_SCANNER/head-request"},
			wantKpis:   "0 0 0 0 0 1",
		},
		{
			name: "honeypot relabels the visitor's earlier click and open",
			do: func(t *testing.T, pixel string, links []string, honeypot string) {
				hit(t, "GET", pixel, "198.51.100.4", chromeUA)
				hit(t, "GET", links[1], "198.51.100.4", chromeUA)
				hit(t, "GET", links[0], "203.0.113.9", chromeUA) // another client: untouched
				res := hit(t, "GET", honeypot, "198.51.100.4", chromeUA)
				if res.StatusCode != http.StatusFound || !strings.HasSuffix(res.Header.Get("Location"), "/") {
					t.Fatalf("honeypot: %d to %q", res.StatusCode, res.Header.Get("Location"))
				}
			},
			wantLabels: []string{"machine/SECURITY_SCANNER/honeypot", "machine/SECURITY_SCANNER/honeypot", "human",
				"machine/SECURITY_SCANNER/honeypot"},
			wantKpis: "0 0 1 1 1 2",
			// The open looked like a person's when it came, and its alert went out in that second; the
			// relabel moves the counts but cannot recall an alert already delivered.
			wantFirst: 1,
		},
		{
			name: "several links within a second or two",
			do: func(t *testing.T, _ string, links []string, _ string) {
				// Past the 1 ms click-after-send window, which a loopback round trip can beat, so that
				// only the burst rule can fire.
				time.Sleep(5 * time.Millisecond)
				hit(t, "GET", links[0], "192.0.2.33", chromeUA)
				hit(t, "GET", links[1], "192.0.2.33", chromeUA)
			},
			wantLabels: []string{"machine/SECURITY_SCANNER/click-burst", "machine/SECURITY_SCANNER/click-burst"},
			wantKpis:   "0 0 0 0 0 2",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := e.follow(t, "ann@fabrikam.com")
			tt.do(t, m.pixels[0], m.links[0], m.honeypt[0])
			got := e.read(t, m.id)
			msg := got.Message
			var labels []string
			for i := len(msg.Interactions.Edges) - 1; i >= 0; i-- {
				labels = append(labels, msg.Interactions.Edges[i].Node.label())
			}
			if strings.Join(labels, ",") != strings.Join(tt.wantLabels, ",") {
				t.Errorf("labels\n got %v\nwant %v", labels, tt.wantLabels)
			}
			k := msg.Kpis
			if kpis := fmt.Sprintf("%d %d %d %d %d %d", k.Opens, k.UniqueOpens, k.Clicks, k.UniqueClicks, k.MachineOpens,
				k.MachineClicks); kpis != tt.wantKpis {
				t.Errorf("kpis %s, want %s", kpis, tt.wantKpis)
			}
			if (k.FirstOpenedAt != nil) != (k.Opens > 0) {
				t.Errorf("firstOpenedAt %v with %d opens", k.FirstOpenedAt, k.Opens)
			}
			linkClicks := 0
			for _, l := range msg.Links {
				linkClicks += l.Clicks
			}
			if linkClicks != k.Clicks || len(msg.Links) != 2 {
				t.Errorf("links %+v: clicks add up to %d, message has %d", msg.Links, linkClicks, k.Clicks)
			}
			for _, ed := range msg.Interactions.Edges {
				n := ed.Node
				if n.MachineReason != nil && *n.MachineReason == "PROXIED" && n.Device.Type != "UNKNOWN" {
					t.Errorf("proxied open with device %+v, want UNKNOWN", n.Device)
				}
				if n.Recipient == nil || n.Recipient.Email != "ann@fabrikam.com" {
					t.Errorf("interaction names no recipient: %+v", n)
				}
			}
			if n := e.firstOpenAlerts(t, m.id); n != tt.wantFirst {
				t.Errorf("%d FIRST_OPEN alerts, want %d", n, tt.wantFirst)
			}
		})
	}
}

// TestClickOnDeliveryIsAScanner: with the built-in rules, a click within seconds of sending is a
// gateway scanning the message on delivery, known from the message id's time with no store read.
func TestClickOnDeliveryIsAScanner(t *testing.T) {
	e := startLabelled(t, nil)
	m := e.follow(t, "ann@fabrikam.com")
	hit(t, "GET", m.links[0][0], "203.0.113.10", chromeUA)
	msg := e.read(t, m.id).Message
	if len(msg.Interactions.Edges) != 1 || msg.Interactions.Edges[0].Node.label() != "machine/SECURITY_SCANNER/click-after-send" ||
		msg.Kpis.Clicks != 0 || msg.Kpis.MachineClicks != 1 || msg.Links[0].Clicks != 0 {
		t.Fatalf("click on delivery: %+v", msg)
	}
}

// TestPrefetchSweep: an open within seconds of sending that nothing from the recipient follows is
// relabelled PREFETCH once it has settled; one followed by a click stays a person's.
func TestPrefetchSweep(t *testing.T) {
	e := startLabelled(t, rulesWithWindows(t, map[string]string{"click_after_send": "1ms"}))
	m := e.follow(t, "ann@fabrikam.com", "bob@fabrikam.com")
	hit(t, "GET", m.pixels[0], "203.0.113.20", outlookUA) // Ann: an open at delivery, nothing after
	hit(t, "GET", m.pixels[1], "203.0.113.21", outlookUA) // Bob: opens and clicks
	hit(t, "GET", m.links[1][0], "203.0.113.21", outlookUA)
	before := e.read(t, m.id).Message.Kpis
	if before.Opens != 2 || before.UniqueOpens != 2 || before.MachineOpens != 0 {
		t.Fatalf("kpis before the sweep: %+v", before)
	}
	// The sweep's clock runs a minute ahead, so the opens have settled.
	sweep := followed.NewPrefetchSweep(e.DB, e.classifier, followed.PrefetchOptions{Settle: 30 * time.Second,
		Now: func() time.Time { return time.Now().Add(time.Minute) }})
	n, err := sweep.Sweep(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("sweep relabelled %d (err %v), want 1", n, err)
	}
	if n, err := sweep.Sweep(context.Background()); err != nil || n != 0 {
		t.Fatalf("second sweep relabelled %d (err %v), want 0", n, err)
	}
	msg := e.read(t, m.id).Message
	if k := msg.Kpis; k.Opens != 1 || k.UniqueOpens != 1 || k.MachineOpens != 1 || k.Clicks != 1 {
		t.Fatalf("kpis after the sweep: %+v", k)
	}
	for _, ed := range msg.Interactions.Edges {
		n := ed.Node
		want := "human"
		if n.Recipient.Email == "ann@fabrikam.com" {
			want = "machine/PREFETCH/prefetch-after-send"
		}
		if n.label() != want {
			t.Errorf("%s %s: %s, want %s", n.Recipient.Email, n.Kind, n.label(), want)
		}
	}
}

// The client's address comes through a trusted proxy as proxies write it: with a port (Azure
// Application Gateway), or on a header line of its own (HAProxy's option forwardfor), where only the
// last line is the proxy's word. Apple's proxy range then labels an open as Apple's.
func TestForwardedForAsProxiesWriteIt(t *testing.T) {
	const agent = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
	tests := []struct {
		name  string
		lines []string // X-Forwarded-For header lines, in order
		want  string
	}{
		{"an address", []string{"17.58.101.12"}, "machine/APPLE_PRIVACY_PROXY/apple-proxy-range"},
		{"an address and port", []string{"17.58.101.12:5555"}, "machine/APPLE_PRIVACY_PROXY/apple-proxy-range"},
		{"a bracketed IPv6 address and port", []string{"[::ffff:17.58.101.12]:443"}, "machine/APPLE_PRIVACY_PROXY/apple-proxy-range"},
		{"the proxy's own line after the client's claim", []string{"17.58.101.12", "203.0.113.50"}, "human"},
		{"the client's claim on a line before the proxy's", []string{"203.0.113.50", "17.58.101.12"}, "machine/APPLE_PRIVACY_PROXY/apple-proxy-range"},
	}
	e := startLabelled(t, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := e.follow(t, "ann@fabrikam.com")
			req, _ := http.NewRequest("GET", strings.ReplaceAll(m.pixels[0], "&amp;", "&"), nil)
			req.Header.Set("User-Agent", agent)
			for _, l := range tc.lines {
				req.Header.Add("X-Forwarded-For", l)
			}
			res, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			edges := e.read(t, m.id).Message.Interactions.Edges
			if len(edges) != 1 || edges[0].Node.label() != tc.want {
				t.Fatalf("interactions %+v, want one labelled %s", edges, tc.want)
			}
		})
	}
}
