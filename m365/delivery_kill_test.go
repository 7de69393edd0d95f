package m365

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/engage-email/engage/auth"
	"github.com/engage-email/engage/delivery"
	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/m365/m365test"
	"github.com/engage-email/engage/m365/m365test/entratest"
	"github.com/engage-email/engage/store/sqlite"
)

// Environment of a worker process started by TestTwoWorkersOneKilled.
const (
	envWorker    = "ENGAGE_TEST_DELIVERY_WORKER" // its instance name; unset in a normal test run
	envDB        = "ENGAGE_TEST_DELIVERY_DB"
	envGraph     = "ENGAGE_TEST_DELIVERY_GRAPH"
	envAuthority = "ENGAGE_TEST_DELIVERY_AUTHORITY"
	envRoots     = "ENGAGE_TEST_DELIVERY_ROOTS" // PEM file of the certificates to trust
)

// TestDeliveryWorkerProcess is the body of a worker process: an Engage delivery worker on the shared
// SQLite file, sending through Graph until it is killed.
func TestDeliveryWorkerProcess(t *testing.T) {
	name := os.Getenv(envWorker)
	if name == "" {
		t.Skip("runs only as a worker process of TestTwoWorkersOneKilled")
	}
	pemData, err := os.ReadFile(os.Getenv(envRoots))
	if err != nil {
		t.Fatal(err)
	}
	client := clientTrusting(t, pemData)
	db, err := sqlite.Open(context.Background(), os.Getenv(envDB), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(context.Background(), Config{TenantID: entratest.TenantID, ClientID: entratest.ClientID,
		ClientSecret: entratest.ClientSecret, GraphURL: os.Getenv(envGraph), AuthorityURL: os.Getenv(envAuthority), HTTPClient: client})
	if err != nil {
		t.Fatal(err)
	}
	svc := delivery.New(db, db, NewMailer(c), delivery.Options{Instance: name, Lease: 3 * time.Second,
		PollEvery: 50 * time.Millisecond, Concurrency: 4})
	svc.Run(context.Background()) // until killed
}

// proxy sits between the worker processes and the fake Graph: each worker reaches it under its own
// prefix, so the proxy knows who sent what, and it can hold one answer while that worker is killed.
type proxy struct {
	srv    *httptest.Server
	graph  *m365test.Graph
	killAt int // the worker A send whose answer is held
	killed chan struct{}

	mu      sync.Mutex
	owner   map[string]string // draft id -> Engage message id
	sends   map[string][]int  // draft id -> statuses of its sends
	byA     int               // successful sends made by worker A
	byB     int
	drafted int
}

func newProxy(t *testing.T, g *m365test.Graph, killAt int) *proxy {
	p := &proxy{graph: g, killAt: killAt, killed: make(chan struct{}), owner: map[string]string{}, sends: map[string][]int{}}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			target := strings.TrimSuffix(g.URL(), "/v1.0")
			r.Out.URL.Scheme, r.Out.URL.Host = "https", strings.TrimPrefix(target, "https://")
			worker, rest, _ := strings.Cut(strings.TrimPrefix(r.In.URL.Path, "/"), "/")
			r.Out.URL.Path, r.Out.URL.RawPath = "/"+rest, ""
			r.Out.Header.Set(workerHeader, worker)
			r.Out.Host = ""
		},
		Transport:      g.Client().Transport,
		ModifyResponse: p.observe,
		// The held answer's request is cancelled when its worker dies: not worth a log line.
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) },
	}
	p.srv = httptest.NewTLSServer(rp)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *proxy) observe(resp *http.Response) error {
	req := resp.Request
	worker := req.Header.Get(workerHeader)
	path := req.URL.Path
	switch {
	case req.Method == "POST" && strings.HasSuffix(path, "/messages") && resp.StatusCode == http.StatusCreated:
		raw, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		resp.Body = io.NopCloser(bytes.NewReader(raw))
		var msg struct {
			ID      string                         `json:"id"`
			Headers []struct{ Name, Value string } `json:"internetMessageHeaders"`
		}
		if err := json.Unmarshal(raw, &msg); err != nil {
			return err
		}
		p.mu.Lock()
		p.drafted++
		for _, h := range msg.Headers {
			if h.Name == delivery.HeaderMessageID {
				p.owner[msg.ID] = h.Value
			}
		}
		p.mu.Unlock()
	case req.Method == "POST" && strings.HasSuffix(path, "/send"):
		id := strings.TrimSuffix(path[strings.LastIndex(strings.TrimSuffix(path, "/send"), "/")+1:], "/send")
		p.mu.Lock()
		p.sends[id] = append(p.sends[id], resp.StatusCode)
		hold := false
		if resp.StatusCode == http.StatusAccepted {
			if worker == "A" {
				p.byA++
				hold = p.byA == p.killAt
			} else {
				p.byB++
			}
		}
		p.mu.Unlock()
		if hold {
			// Exchange has sent the mail; worker A never hears so: it is killed while waiting.
			close(p.killed)
			<-req.Context().Done()
			return req.Context().Err()
		}
	}
	return nil
}

// workerHeader carries, from proxy to fake Graph, which worker made a request.
const workerHeader = "X-Engage-Test-Worker"

// Certificate is the proxy's TLS certificate, for the workers to trust.
func (p *proxy) Certificate() *x509.Certificate { return p.srv.Certificate() }

// clientTrusting is an HTTP client trusting the PEM certificates given, as the workers' machine would.
func clientTrusting(t *testing.T, pemData []byte) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		t.Fatal("no certificate in the roots file")
	}
	return &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
}

func TestTwoWorkersOneKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two worker processes")
	}
	const jobs = 200
	a := entratest.New(t)
	g := m365test.NewGraph(t)
	g.VerifyTokens(a)
	p := newProxy(t, g, 40)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "engage.db")
	db, err := sqlite.Open(context.Background(), dbPath, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })

	// 200 messages of alice's, a quarter of them individual to two recipients, each due a moment after scheduling.
	keys, err := followed.LoadOrCreateKeyRing(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	fs, err := followed.NewService(db, keys, "https://engage.example.com", followed.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	alice := auth.Identity{Email: "alice@contoso.com"}
	api := delivery.New(db, db, nil, delivery.Options{Instance: "api"})
	renders := map[string]int{}
	for i := range jobs {
		in := followed.FollowInput{Subject: fmt.Sprintf("Offer %d", i), HTML: "<p>Hello</p>", Follow: true,
			Recipients: []followed.Recipient{{Email: fmt.Sprintf("r%d@fabrikam.com", i)}}}
		if i%4 == 0 {
			in.Individual = true
			in.Recipients = append(in.Recipients, followed.Recipient{Email: fmt.Sprintf("s%d@fabrikam.com", i)})
		}
		m, err := fs.Follow(context.Background(), alice, in)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := api.Send(context.Background(), alice, m.ID, time.Now().Add(100*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		renders[m.ID] = len(m.Renders)
	}

	roots := filepath.Join(dir, "roots.pem")
	var pemData []byte
	for _, c := range []interface{ Certificate() *x509.Certificate }{p, a} {
		pemData = append(pemData, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate().Raw})...)
	}
	if err := os.WriteFile(roots, pemData, 0o600); err != nil {
		t.Fatal(err)
	}
	start := func(name string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestDeliveryWorkerProcess$", "-test.timeout=5m")
		cmd.Env = append(os.Environ(), envWorker+"="+name, envDB+"="+dbPath, envGraph+"="+p.srv.URL+"/"+name+"/v1.0",
			envAuthority+"="+a.URL(), envRoots+"="+roots)
		cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd
	}
	workerA, _ := start("A"), start("B")

	select {
	case <-p.killed:
	case <-time.After(2 * time.Minute):
		t.Fatal("worker A never reached its 40th send")
	}
	if err := workerA.Process.Kill(); err != nil { // SIGKILL: no deferred code runs
		t.Fatal(err)
	}
	_ = workerA.Wait()

	// Worker B finishes everything, A's leased jobs included once their leases run out.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		sent := 0
		for id := range renders {
			if j, err := db.Job(context.Background(), id); err == nil && j.Status == delivery.StatusSent {
				sent++
			}
		}
		if sent == jobs {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d jobs sent when giving up", sent, jobs)
		}
		time.Sleep(100 * time.Millisecond)
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	sentPerMessage := map[string]int{}
	rescued := 0
	for draft, statuses := range p.sends {
		for _, st := range statuses {
			if st != http.StatusAccepted {
				t.Errorf("draft %s: a send answered %d (a second send of one draft)", draft, st)
			}
		}
		sentPerMessage[p.owner[draft]] += len(statuses)
	}
	for id, n := range renders {
		if sentPerMessage[id] != n {
			t.Errorf("message %s: %d sends, want exactly %d (one per render)", id, sentPerMessage[id], n)
		}
		sends, _ := db.RenderSends(context.Background(), id)
		for _, s := range sends {
			if gm, ok := g.Message(s.DraftID); !ok || gm["isDraft"] != false || s.SentAt.IsZero() {
				t.Errorf("message %s render %d: recorded draft %s is not the sent mail", id, s.Render, s.DraftID)
			}
		}
		if j, _ := db.Job(context.Background(), id); j.Attempts > 1 {
			rescued++
		}
	}
	t.Logf("drafts %d, sends by A %d (killed holding the answer to its %dth), by B %d, jobs taken over from A %d",
		p.drafted, p.byA, p.killAt, p.byB, rescued)
	if p.byB == 0 || rescued == 0 {
		t.Errorf("B sent %d and took over %d jobs: the run did not exercise a takeover", p.byB, rescued)
	}
}
