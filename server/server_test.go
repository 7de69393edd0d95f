package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestHealthAndReadiness(t *testing.T) {
	e := start(t)
	for _, path := range []string{"/healthz", "/readyz"} {
		res, err := http.Get(e.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 || res.Header.Get("X-Request-Id") == "" {
			t.Fatalf("%s: %d, request id %q", path, res.StatusCode, res.Header.Get("X-Request-Id"))
		}
	}
	e.DB.Close()
	res, err := http.Get(e.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("readyz with the store closed: %d, want 503", res.StatusCode)
	}
	res, _ = http.Get(e.URL + "/healthz")
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("healthz with the store closed: %d, want 200", res.StatusCode)
	}
}

func TestMe(t *testing.T) {
	e := start(t)
	tests := []struct {
		name, user, wantEmail, wantCode string
		wantAdmin                       bool
	}{
		{"rep", "rep@contoso.com", "rep@contoso.com", "", false},
		{"admin", "Admin@Contoso.com", "admin@contoso.com", "", true},
		{"anonymous", "", "", "UNAUTHENTICATED", false},
		{"not an address", "rep", "", "UNAUTHENTICATED", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out struct {
				Me struct {
					Email   string
					IsAdmin bool
				}
			}
			r := e.gql(t, tt.user, `{ me { email isAdmin } }`, nil, &out)
			if r.code() != tt.wantCode || out.Me.Email != tt.wantEmail || out.Me.IsAdmin != tt.wantAdmin {
				t.Fatalf("got %+v code %q, want %s admin=%v code %q", out.Me, r.code(), tt.wantEmail, tt.wantAdmin, tt.wantCode)
			}
			if r.status >= 500 {
				t.Fatalf("status %d", r.status)
			}
		})
	}
}

func TestBadRequests(t *testing.T) {
	e := start(t)
	deep := "{ me { email } " + strings.Repeat("a: me { email } ", 300) + "}"
	tests := []struct {
		name, method, contentType, body string
		wantStatus                      int
		wantBody                        string
	}{
		{"malformed JSON", "POST", "application/json", `{"query": "{ me { email } }"`, 400, "json"},
		{"not JSON at all", "POST", "application/json", `hello`, 400, "json"},
		{"unknown field", "POST", "application/json", `{"query": "{ nope }"}`, 422, "GRAPHQL_VALIDATION_FAILED"},
		{"syntax error", "POST", "application/json", `{"query": "{ me { "}`, 422, "GRAPHQL_PARSE_FAILED"},
		{"unknown operation name", "POST", "application/json", `{"query": "query A { me { email } }", "operationName": "B"}`, 422, "operation B not found"},
		{"oversize body", "POST", "application/json", `{"query": "` + strings.Repeat(" ", 300<<10) + `{ me { email } }"}`, 413, ""},
		{"too complex", "POST", "application/json", `{"query": "` + deep + `"}`, 200, "COMPLEXITY_LIMIT_EXCEEDED"},
		{"GET works", "GET", "", "", 200, "UNAUTHENTICATED"},
		{"unsupported content type", "POST", "text/plain", `{ me { email } }`, 400, ""},
		{"a time that is not one", "POST", "application/json", `{"query": "{ engagementSummary(from: \"yesterday\") { opens } }"}`, 200,
			`"yesterday\" is not a time: send one in RFC 3339`},
		{"a time variable that is a number", "POST", "application/json",
			`{"query": "query($f: Time) { engagementSummary(from: $f) { opens } }", "variables": {"f": 17}}`, 200, "BAD_USER_INPUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := e.URL + "/graphql"
			if tt.method == "GET" {
				url += "?query=%7B%20me%20%7B%20email%20%7D%20%7D"
			}
			req, _ := http.NewRequest(tt.method, url, strings.NewReader(tt.body))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tt.wantStatus || !strings.Contains(string(body), tt.wantBody) {
				t.Fatalf("status %d body %.300s, want %d containing %q", res.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
		})
	}
	// The server still serves after all that.
	var out struct{ Me struct{ Email string } }
	if r := e.gql(t, "rep@contoso.com", `{ me { email } }`, nil, &out); r.code() != "" || out.Me.Email != "rep@contoso.com" {
		t.Fatalf("after bad requests: %+v", r)
	}
}

// TestChunkedBodies sends bodies without a Content-Length: one over the limit gets the same 413 as one
// that declares its length, and one within it is served as usual.
func TestChunkedBodies(t *testing.T) {
	e := start(t)
	tests := []struct {
		name       string
		body       string
		wantStatus int
		wantBody   string
	}{
		{"within the limit", `{"query": "{ me { email } }"}`, 200, "rep@contoso.com"},
		{"over the limit", `{"query": "` + strings.Repeat(" ", 300<<10) + `{ me { email } }"}`, 413, "over the limit"},
		{"empty", ``, 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A reader of no known length makes the client send the body chunked.
			req, _ := http.NewRequest("POST", e.URL+"/graphql", io.MultiReader(strings.NewReader(tt.body)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Engage-User", "rep@contoso.com")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tt.wantStatus || !strings.Contains(string(body), tt.wantBody) {
				t.Fatalf("status %d body %.300s, want %d containing %q", res.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
		})
	}
}

// TestSubscriptionOverPlainHTTP sends a signed-in subscription as a POST: it is answered at once with
// the way to subscribe, where gqlgen's transport held it open until the first alert. (GET allows
// queries alone, and says so.)
func TestSubscriptionOverPlainHTTP(t *testing.T) {
	e := start(t)
	body, _ := json.Marshal(map[string]string{"query": `subscription { alerts { id } }`})
	req, _ := http.NewRequest("POST", e.URL+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Engage-User", "rep@contoso.com")
	res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	got, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(got), "BAD_USER_INPUT") || !strings.Contains(string(got), "over a websocket") {
		t.Fatalf("status %d body %.300s, want BAD_USER_INPUT naming the websocket", res.StatusCode, got)
	}
}
