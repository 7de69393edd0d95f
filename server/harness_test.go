package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/engage-email/engage/auth"
	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/graph"
	"github.com/engage-email/engage/server"
	"github.com/engage-email/engage/store/sqlite"
)

// engage is a real Engage on the embedded store, served over real HTTP.
type engage struct {
	URL string
	DB  *sqlite.DB
}

func start(t *testing.T) *engage {
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
	svc, err := followed.NewService(db, keys, base, followed.Limits{MaxHTMLBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	rec := followed.NewRecorder(db, followed.RecorderOptions{Log: log})
	ctx, cancel := context.WithCancel(context.Background())
	go rec.Run(ctx)
	srv, err := server.New(server.Options{BodyLimit: 256 << 10, Introspection: true, ComplexityLimit: 200,
		AllowedOrigins: []string{"https://outlook.office.com"}},
		server.Deps{Log: log, Auth: auth.NewLocal([]string{"admin@contoso.com"}), Ready: db.Ping,
			Resolver: &graph.Resolver{Followed: svc}, Keys: keys, Devices: devices, Recorder: rec})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv.Handler()
	ts.Start()
	t.Cleanup(func() { ts.Close(); cancel(); rec.Wait() })
	return &engage{URL: ts.URL, DB: db}
}

type gqlResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
	status int
}

func (r gqlResponse) code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	c, _ := r.Errors[0].Extensions["code"].(string)
	return c
}

// gql posts a GraphQL request as user ("" = anonymous) and decodes the answer into out when given.
func (e *engage) gql(t *testing.T, user, query string, vars map[string]any, out any) gqlResponse {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest("POST", e.URL+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if user != "" {
		req.Header.Set(auth.LocalHeader, user)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var r gqlResponse
	r.status = res.StatusCode
	raw, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("status %d, body %q: %v", res.StatusCode, raw, err)
	}
	if out != nil && len(r.Data) > 0 && string(r.Data) != "null" {
		if err := json.Unmarshal(r.Data, out); err != nil {
			t.Fatalf("decode %s: %v", r.Data, err)
		}
	}
	return r
}

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
