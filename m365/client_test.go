package m365

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/engage-email/engage/m365/m365test"
	"github.com/engage-email/engage/m365/m365test/entratest"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// cloud is a fake Microsoft cloud and a client configured against it.
type cloud struct {
	authority *entratest.Authority
	graph     *m365test.Graph
	client    *Client
	cfg       Config
}

func newCloud(t *testing.T, edit func(*Config)) *cloud {
	t.Helper()
	a := entratest.New(t)
	g := m365test.NewGraph(t)
	g.VerifyTokens(a)
	cfg := Config{
		TenantID:      entratest.TenantID,
		ClientID:      entratest.ClientID,
		ClientSecret:  entratest.ClientSecret,
		GraphURL:      g.URL(),
		AuthorityURL:  a.URL(),
		HTTPClient:    m365test.Client(a, g),
		MaxRetryDelay: 5 * time.Second,
	}
	if edit != nil {
		edit(&cfg)
	}
	c, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &cloud{authority: a, graph: g, client: c, cfg: cfg}
}

// userCaller is alice calling through the add-in with her own access token.
func (c *cloud) userCaller(t *testing.T, email string) Caller {
	return Caller{User: email, UserToken: c.authority.Sign(t, c.authority.UserClaims(email))}
}

func testDraft() Draft {
	return Draft{
		Subject: "Proposal for Contoso",
		HTML:    `<p>Hello Bob,</p><p><a href="https://t.example/r/abc">Our offer</a></p><img src="cid:logo">`,
		To:      []Address{{Email: "bob@fabrikam.com", Name: "Bob Kelly"}},
		Cc:      []Address{{Email: "carol@fabrikam.com"}},
		Bcc:     []Address{{Email: "archive@contoso.com", Name: "Archive"}},
		Attachments: []FileAttachment{
			{Name: "logo.png", ContentType: "image/png", ContentID: "logo", Content: []byte("\x89PNG fake")},
			{Name: "terms.txt", ContentType: "text/plain", Content: []byte("terms")},
		},
		Headers: map[string]string{"X-Engage-Message-Id": "msg-42"},
	}
}

func TestCreateDraftAndSendOnBehalfOfUser(t *testing.T) {
	c := newCloud(t, nil)
	ctx := context.Background()
	alice := c.userCaller(t, "alice@contoso.com")

	ref, err := c.client.CreateDraft(ctx, alice, testDraft())
	if err != nil {
		t.Fatalf("CreateDraft: %v", err)
	}
	if ref.ID == "" || ref.InternetMessageID == "" || ref.ConversationID == "" {
		t.Fatalf("DraftRef = %+v, want all ids", ref)
	}
	exists, err := c.client.DraftExists(ctx, alice, ref.ID)
	if err != nil || !exists {
		t.Fatalf("DraftExists before send = %v, %v; want true", exists, err)
	}
	if err := c.client.SendDraft(ctx, alice, ref.ID); err != nil {
		t.Fatalf("SendDraft: %v", err)
	}
	exists, err = c.client.DraftExists(ctx, alice, ref.ID)
	if err != nil || exists {
		t.Fatalf("DraftExists after send = %v, %v; want false (sent, same immutable id)", exists, err)
	}

	reqs := c.graph.Requests()
	want := []struct{ method, path string }{
		{"POST", "/users/alice@contoso.com/messages"},
		{"GET", "/users/alice@contoso.com/messages/" + ref.ID},
		{"POST", "/users/alice@contoso.com/messages/" + ref.ID + "/send"},
		{"GET", "/users/alice@contoso.com/messages/" + ref.ID},
	}
	if len(reqs) != len(want) {
		t.Fatalf("graph saw %d requests, want %d: %+v", len(reqs), len(want), reqs)
	}
	for i, w := range want {
		r := reqs[i]
		if r.Method != w.method || r.Path != w.path {
			t.Errorf("request %d = %s %s, want %s %s", i, r.Method, r.Path, w.method, w.path)
		}
		if r.Prefer != `IdType="ImmutableId"` {
			t.Errorf("request %d Prefer = %q, want immutable ids", i, r.Prefer)
		}
		who, err := r.Caller()
		if err != nil || who != "alice@contoso.com" {
			t.Errorf("request %d made as %q (%v), want alice's on-behalf-of token", i, who, err)
		}
	}
	if got := reqs[1].Query.Get("$select"); got != "isDraft" {
		t.Errorf("DraftExists $select = %q, want isDraft", got)
	}
	if reqs[2].Body != nil {
		t.Errorf("send body = %v, want none", reqs[2].Body)
	}
	golden(t, "create_draft.json", reqs[0].Body)

	// MSAL caches the on-behalf-of token: one exchange for four calls.
	toks := c.authority.TokenRequests()
	if len(toks) != 1 || toks[0].GrantType != entratest.GrantJWTBearer || toks[0].RequestedTokenUse != "on_behalf_of" ||
		toks[0].Assertion != alice.UserToken {
		t.Errorf("token requests = %+v, want one on-behalf-of exchange of alice's token", toks)
	}
}

func TestAppOnlyCallerUsesClientCredentials(t *testing.T) {
	c := newCloud(t, nil)
	ctx := context.Background()
	bob := Caller{User: "bob@contoso.com"}
	ref, err := c.client.CreateDraft(ctx, bob, Draft{Subject: "Reminder", HTML: "<p>hi</p>", To: []Address{{Email: "x@fabrikam.com"}}})
	if err != nil {
		t.Fatalf("CreateDraft: %v", err)
	}
	if err := c.client.SendDraft(ctx, bob, ref.ID); err != nil {
		t.Fatalf("SendDraft: %v", err)
	}
	for i, r := range c.graph.Requests() {
		if who, err := r.Caller(); err != nil || who != "app" {
			t.Errorf("request %d %s made as %q (%v), want the app-only token", i, r.Path, who, err)
		}
	}
	toks := c.authority.TokenRequests()
	if len(toks) != 1 || toks[0].GrantType != entratest.GrantClientCredentials || toks[0].ClientAssertion {
		t.Errorf("token requests = %+v, want one client-credentials grant with the secret", toks)
	}
}

func TestCertificateCredential(t *testing.T) {
	a := entratest.New(t)
	path := filepath.Join(t.TempDir(), "app.pem")
	if err := os.WriteFile(path, a.RegisterCertificate(t), 0o600); err != nil {
		t.Fatal(err)
	}
	g := m365test.NewGraph(t)
	g.VerifyTokens(a)
	g.SetMailboxSettings("bob@contoso.com", m365test.DefaultMailboxSettings("UTC"))
	c, err := New(context.Background(), Config{
		TenantID: entratest.TenantID, ClientID: entratest.ClientID, CertificatePath: path,
		GraphURL: g.URL(), AuthorityURL: a.URL(), HTTPClient: m365test.Client(a, g),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if _, err := c.MailboxSettings(context.Background(), Caller{User: "bob@contoso.com"}); err != nil {
		t.Fatalf("MailboxSettings with a certificate: %v", err)
	}
	toks := a.TokenRequests()
	if len(toks) != 1 || !toks[0].ClientAssertion {
		t.Errorf("token requests = %+v, want one proven by a certificate assertion", toks)
	}
}

func TestTokenRefused(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(*Config)
		caller func(c *cloud) Caller
	}{
		{name: "wrong secret", edit: func(c *Config) { c.ClientSecret = "wrong" },
			caller: func(*cloud) Caller { return Caller{User: "bob@contoso.com"} }},
		{name: "user token forged", caller: func(c *cloud) Caller {
			return Caller{User: "alice@contoso.com", UserToken: entratest.SignWith(t, c.authority.NewKey(t), c.authority.UserClaims("alice@contoso.com"))}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCloud(t, tc.edit)
			err := c.client.SendDraft(context.Background(), tc.caller(c), "AAMk1")
			if !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("err = %v, want ErrUnauthorized", err)
			}
			if n := len(c.graph.Requests()); n != 0 {
				t.Errorf("graph saw %d requests, want none without a token", n)
			}
		})
	}
}

func TestDraftRefusedBeforeGraph(t *testing.T) {
	c := newCloud(t, nil)
	base := func(edit func(*Draft)) Draft { d := testDraft(); edit(&d); return d }
	tests := []struct {
		name  string
		draft Draft
	}{
		{"no recipient", base(func(d *Draft) { d.To, d.Cc, d.Bcc = nil, nil, nil })},
		{"not an address", base(func(d *Draft) { d.To = []Address{{Email: "bob"}} })},
		{"header without X-", base(func(d *Draft) { d.Headers = map[string]string{"Subject": "x"} })},
		{"unnamed attachment", base(func(d *Draft) { d.Attachments = []FileAttachment{{Content: []byte("x")}} })},
		{"attachments too large", base(func(d *Draft) {
			d.Attachments = []FileAttachment{{Name: "big.bin", Content: make([]byte, maxInlineAttachments+1)}}
		})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := c.client.CreateDraft(context.Background(), Caller{User: "bob@contoso.com"}, tc.draft); err == nil {
				t.Fatal("CreateDraft succeeded, want an error")
			}
		})
	}
	if _, err := c.client.CreateDraft(context.Background(), Caller{}, testDraft()); err == nil {
		t.Error("CreateDraft without a mailbox succeeded")
	}
	if n := len(c.graph.Requests()); n != 0 {
		t.Errorf("graph saw %d requests, want none for refused drafts", n)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no tenant", Config{ClientID: "c", ClientSecret: "s"}},
		{"no client", Config{TenantID: "t", ClientSecret: "s"}},
		{"no credential", Config{TenantID: "t", ClientID: "c"}},
		{"missing certificate", Config{TenantID: "t", ClientID: "c", CertificatePath: filepath.Join(t.TempDir(), "none.pem")}},
		{"plain http graph", Config{TenantID: "t", ClientID: "c", ClientSecret: "s", GraphURL: "http://graph.example/v1.0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if c, err := New(context.Background(), tc.cfg); err == nil {
				t.Fatalf("New = %v, want an error", c)
			}
		})
	}
}

// golden compares v, as indented JSON, with testdata/name; -update rewrites it.
func golden(t *testing.T, name string, v any) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	got := buf.Bytes()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		var g, w any
		_ = json.Unmarshal(got, &g)
		_ = json.Unmarshal(want, &w)
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s differs from the golden file:\n%s\nwant:\n%s", name, got, want)
		}
	}
}
