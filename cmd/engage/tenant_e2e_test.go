package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/engage-email/engage/m365/m365test"
	"github.com/engage-email/engage/m365/m365test/entratest"
)

// envTenantChild marks the test binary started by startTenantEngage; unset in a normal test run.
const envTenantChild = "ENGAGE_TEST_TENANT_CHILD"

// TestTenantEngageProcess is the body of the child process: Engage run as main runs it, from the
// environment alone, until SIGTERM. A child is needed because run gives Graph and Entra ID no HTTP
// client of its own: the fakes' certificates are trusted through SSL_CERT_FILE, read once per process.
func TestTenantEngageProcess(t *testing.T) {
	if os.Getenv(envTenantChild) != "1" {
		t.Skip("runs only as the Engage process of TestTenantModeEndToEnd")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stderr); err != nil {
		t.Fatalf("engage: %v", err)
	}
}

// startTenantEngage starts Engage in tenant mode against the fakes in a child process and returns its
// address and a stop function that sends SIGTERM and returns how the process ended.
func startTenantEngage(t *testing.T, authority *entratest.Authority, graph *m365test.Graph) (string, func() error) {
	t.Helper()
	dir := t.TempDir()
	var roots []byte
	for _, c := range []interface{ Certificate() *x509.Certificate }{authority, graph} {
		roots = append(roots, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate().Raw})...)
	}
	rootsFile := filepath.Join(dir, "roots.pem")
	if err := os.WriteFile(rootsFile, roots, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestTenantEngageProcess$", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), envTenantChild+"=1", "SSL_CERT_FILE="+rootsFile,
		"ENGAGE_ADDR=127.0.0.1:0", "ENGAGE_DATA_DIR="+filepath.Join(dir, "data"), "ENGAGE_SHUTDOWN_GRACE=5s",
		"ENGAGE_MONGODB_URI=", "ENGAGE_LOG_LEVEL=info",
		"ENGAGE_TENANT_ID="+entratest.TenantID, "ENGAGE_CLIENT_ID="+entratest.ClientID,
		"ENGAGE_CLIENT_SECRET="+entratest.ClientSecret, "ENGAGE_CLIENT_CERTIFICATE=",
		"ENGAGE_API_AUDIENCE=api://"+entratest.ClientID,
		"ENGAGE_GRAPH_URL="+graph.URL(), "ENGAGE_AUTHORITY_URL="+authority.URL())
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	cmd.Stdout = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The log is read to its end, so the child never blocks on a full pipe; the address comes from
	// the "engage listening" line.
	ready, drained := make(chan string, 1), make(chan struct{})
	go func() {
		defer close(drained)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			logs.Write(append(sc.Bytes(), '\n'))
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "engage listening" {
				ready <- line.Addr
			}
		}
	}()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			return err
		}
		<-drained
		return cmd.Wait()
	}
	t.Cleanup(func() {
		if !stopped {
			_ = cmd.Process.Kill()
			stopped = true
			<-drained
			_ = cmd.Wait()
		}
		if t.Failed() {
			t.Logf("engage log:\n%s", logs.String())
		}
	})
	select {
	case addr := <-ready:
		return addr, stop
	case <-drained:
		_ = cmd.Wait()
		stopped = true
		t.Fatalf("engage did not start:\n%s", logs.String())
	case <-time.After(2 * time.Minute):
		t.Fatalf("engage did not start within two minutes:\n%s", logs.String())
	}
	return "", nil
}

// tenantResponse is a GraphQL answer over HTTP, with its status.
type tenantResponse struct {
	status int
	Data   json.RawMessage
	Errors []struct {
		Message    string
		Extensions struct{ Code string }
	}
}

// tenantGQL posts a GraphQL operation to addr, with authorization as the Authorization header when not empty.
func tenantGQL(t *testing.T, addr, authorization, query string, vars map[string]any) tenantResponse {
	t.Helper()
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest("POST", "http://"+addr+"/graphql", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out := tenantResponse{status: res.StatusCode}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		t.Fatalf("status %d: decode answer: %v", res.StatusCode, err)
	}
	return out
}

// TestTenantModeEndToEnd runs Engage as main does with a Microsoft 365 tenant, the fake Entra ID and
// Graph standing in for Microsoft's cloud, and drives it over real HTTP and websockets: callers are
// who their tokens say, and a message is sent from the sender's own mailbox on their behalf.
func TestTenantModeEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an Engage process in tenant mode")
	}
	authority, graph := entratest.New(t), m365test.NewGraph(t)
	graph.VerifyTokens(authority)
	addr, stop := startTenantEngage(t, authority, graph)

	const rep = "rep@contoso.com"
	repToken := "Bearer " + authority.Sign(t, authority.UserClaims(rep))
	adminClaims := authority.UserClaims("boss@contoso.com")
	adminClaims["roles"] = []string{"Engage.Admin"}
	expired := authority.UserClaims(rep)
	expired["iat"], expired["nbf"], expired["exp"] = time.Now().Add(-3*time.Hour).Unix(), time.Now().Add(-3*time.Hour).Unix(),
		time.Now().Add(-2*time.Hour).Unix()

	t.Run("me", func(t *testing.T) {
		for _, tt := range []struct {
			name, authorization, wantEmail string
			wantAdmin                      bool
			wantCode                       string
		}{
			{name: "salesperson", authorization: repToken, wantEmail: rep},
			{name: "admin role", authorization: "Bearer " + authority.Sign(t, adminClaims), wantEmail: "boss@contoso.com", wantAdmin: true},
			{name: "expired token", authorization: "Bearer " + authority.Sign(t, expired), wantCode: "UNAUTHENTICATED"},
			{name: "no token", wantCode: "UNAUTHENTICATED"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				r := tenantGQL(t, addr, tt.authorization, `{ me { email isAdmin } }`, nil)
				if r.status >= 500 {
					t.Fatalf("status %d", r.status)
				}
				if tt.wantCode != "" {
					if len(r.Errors) == 0 || r.Errors[0].Extensions.Code != tt.wantCode {
						t.Fatalf("errors %+v, want %s", r.Errors, tt.wantCode)
					}
					return
				}
				var data struct {
					Me struct {
						Email   string
						IsAdmin bool
					}
				}
				if len(r.Errors) > 0 || json.Unmarshal(r.Data, &data) != nil {
					t.Fatalf("errors %+v, data %s", r.Errors, r.Data)
				}
				if data.Me.Email != tt.wantEmail || data.Me.IsAdmin != tt.wantAdmin {
					t.Fatalf("me = %+v, want %s admin=%v", data.Me, tt.wantEmail, tt.wantAdmin)
				}
			})
		}
	})

	t.Run("websocket connection_init", func(t *testing.T) {
		for _, tt := range []struct {
			name    string
			payload map[string]any
			ack     bool
		}{
			{name: "bearer token is acked", payload: map[string]any{"Authorization": repToken}, ack: true},
			{name: "no token closes 4401", payload: map[string]any{}},
			{name: "expired token closes 4401", payload: map[string]any{"Authorization": "Bearer " + authority.Sign(t, expired)}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				d := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}}
				c, _, err := d.Dial("ws://"+addr+"/graphql", nil)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if err := c.WriteJSON(map[string]any{"type": "connection_init", "payload": tt.payload}); err != nil {
					t.Fatal(err)
				}
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				var m struct{ Type string }
				err = c.ReadJSON(&m)
				switch {
				case tt.ack && (err != nil || m.Type != "connection_ack"):
					t.Fatalf("got %+v, %v; want connection_ack", m, err)
				case !tt.ack && !websocket.IsCloseError(err, 4401):
					t.Fatalf("got %+v, %v; want close 4401", m, err)
				}
			})
		}
	})

	t.Run("send goes through the sender's mailbox on their behalf", func(t *testing.T) {
		r := tenantGQL(t, addr, repToken, `mutation { followMessage(input: {subject: "Offer", html: "<p>Hello</p>",
			recipients: [{email: "client@fabrikam.com"}]}) { id } }`, nil)
		var follow struct{ FollowMessage struct{ ID string } }
		if len(r.Errors) > 0 || json.Unmarshal(r.Data, &follow) != nil || follow.FollowMessage.ID == "" {
			t.Fatalf("followMessage: errors %+v, data %s", r.Errors, r.Data)
		}
		r = tenantGQL(t, addr, repToken, `mutation($id: ID!) { sendMessage(id: $id) { status sendError } }`,
			map[string]any{"id": follow.FollowMessage.ID})
		var send struct {
			SendMessage struct{ Status, SendError string }
		}
		if len(r.Errors) > 0 || json.Unmarshal(r.Data, &send) != nil || send.SendMessage.Status != "SENT" {
			t.Fatalf("sendMessage: errors %+v, data %s", r.Errors, r.Data)
		}

		var calls []string
		for _, req := range graph.Requests() {
			if !strings.HasPrefix(strings.ToLower(req.Path), "/users/"+rep+"/messages") {
				continue // e.g. the mailbox time zone pass, app-only
			}
			who, err := req.Caller()
			if err != nil {
				t.Fatalf("%s %s: %v", req.Method, req.Path, err)
			}
			if who != rep {
				t.Errorf("%s %s was made as %q, want on behalf of %s", req.Method, req.Path, who, rep)
			}
			path := strings.TrimPrefix(strings.ToLower(req.Path), "/users/"+rep)
			if _, rest, _ := strings.Cut(req.Path, "/messages/"); strings.HasSuffix(rest, "/send") {
				if m, ok := graph.Message(strings.TrimSuffix(rest, "/send")); !ok || m["isDraft"] != false {
					t.Errorf("sent draft %s is not in Sent Items: %v", rest, m)
				}
				path = "/messages/{id}/send"
			}
			calls = append(calls, req.Method+" "+path)
		}
		if want := []string{"POST /messages", "POST /messages/{id}/send"}; strings.Join(calls, ", ") != strings.Join(want, ", ") {
			t.Errorf("Graph saw %q for %s's mailbox, want %q", calls, rep, want)
		}
		var obo int
		for _, tr := range authority.TokenRequests() {
			if tr.GrantType == entratest.GrantJWTBearer && tr.RequestedTokenUse == "on_behalf_of" {
				if "Bearer "+tr.Assertion != repToken {
					t.Error("an on-behalf-of exchange presented a token other than the sender's")
				}
				obo++
			}
		}
		if obo == 0 {
			t.Error("no on-behalf-of token was requested from Entra ID")
		}
	})

	if err := stop(); err != nil {
		t.Errorf("engage ended with %v after SIGTERM, want a clean exit", err)
	}
}
