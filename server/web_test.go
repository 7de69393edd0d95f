package server_test

import (
	"bytes"
	"encoding/xml"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/engage-email/engage/auth"
	"github.com/engage-email/engage/graph"
	"github.com/engage-email/engage/server"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// webServer is an Engage HTTP surface with the add-in settings given and no features behind it: the
// manifest and the pages need none.
func webServer(t *testing.T, addIn server.AddIn) *httptest.Server {
	t.Helper()
	log := slog.New(server.LogHandler{Handler: slog.NewJSONHandler(io.Discard, nil)})
	srv, err := server.New(server.Options{AddIn: addIn}, server.Deps{Log: log, Auth: auth.NewLocal(nil), Resolver: &graph.Resolver{}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts
}

// manifest is the part of an Outlook manifest Engage fills in.
type manifest struct {
	XMLName    xml.Name `xml:"http://schemas.microsoft.com/office/appforoffice/1.1 OfficeApp"`
	Type       string   `xml:"http://www.w3.org/2001/XMLSchema-instance type,attr"`
	ID         string   `xml:"Id"`
	IconURL    urlAttr  `xml:"IconUrl"`
	HiResIcon  urlAttr  `xml:"HighResolutionIconUrl"`
	SupportURL urlAttr  `xml:"SupportUrl"`
	AppDomains []string `xml:"AppDomains>AppDomain"`
	Forms      []struct {
		Type   string  `xml:"http://www.w3.org/2001/XMLSchema-instance type,attr"`
		Source urlAttr `xml:"DesktopSettings>SourceLocation"`
	} `xml:"FormSettings>Form"`
	Permissions string `xml:"Permissions"`
	Overrides   struct {
		Inner struct {
			Images []struct {
				ID  string `xml:"id,attr"`
				URL string `xml:"DefaultValue,attr"`
			} `xml:"Resources>Images>Image"`
			URLs []struct {
				ID  string `xml:"id,attr"`
				URL string `xml:"DefaultValue,attr"`
			} `xml:"Resources>Urls>Url"`
			WebApp *struct {
				ID       string   `xml:"Id"`
				Resource string   `xml:"Resource"`
				Scopes   []string `xml:"Scopes>Scope"`
			} `xml:"WebApplicationInfo"`
		} `xml:"VersionOverrides"`
	} `xml:"VersionOverrides"`
}

type urlAttr struct {
	URL string `xml:"DefaultValue,attr"`
}

func getManifest(t *testing.T, ts *httptest.Server) []byte {
	t.Helper()
	res, err := http.Get(ts.URL + "/addin/manifest.xml")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/xml") {
		t.Fatalf("manifest: status %d, type %q: %s", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	return body
}

// wellFormed reads every token, so a stray '&' or an unclosed element anywhere fails.
func wellFormed(t *testing.T, body []byte) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(body))
	for {
		_, err := d.Token()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("manifest is not well-formed XML: %v\n%s", err, body)
		}
	}
}

func TestManifest(t *testing.T) {
	tests := []struct {
		name     string
		addIn    server.AddIn
		base     string // "" = the test server's own address
		origin   string
		sso      bool
		golden   string
		resource string
	}{
		{name: "no public URL: the request's address"},
		{name: "public URL", addIn: server.AddIn{PublicURL: "https://engage.contoso.com"},
			base: "https://engage.contoso.com", origin: "https://engage.contoso.com", golden: "manifest-public-url.xml"},
		{name: "public URL with a path and a trailing slash", addIn: server.AddIn{PublicURL: "https://contoso.com/engage/"},
			base: "https://contoso.com/engage", origin: "https://contoso.com"},
		{name: "tenant: single sign-on", addIn: server.AddIn{PublicURL: "https://engage.contoso.com",
			ClientID: "6f1c2a4e-1b2c-4d5e-8f90-123456789abc", Resource: "api://engage.contoso.com/6f1c2a4e-1b2c-4d5e-8f90-123456789abc"},
			base: "https://engage.contoso.com", origin: "https://engage.contoso.com", sso: true, golden: "manifest-tenant.xml"},
		{name: "values that need escaping stay well-formed", addIn: server.AddIn{PublicURL: "https://contoso.com/a&b<c",
			ClientID: `x"&<y`, Resource: "api://a&b"},
			base: "https://contoso.com/a&b<c", origin: "https://contoso.com", sso: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := webServer(t, tc.addIn)
			base, origin := tc.base, tc.origin
			if base == "" {
				base, origin = ts.URL, ts.URL
			}
			body := getManifest(t, ts)
			wellFormed(t, body)
			var m manifest
			if err := xml.Unmarshal(body, &m); err != nil {
				t.Fatalf("decode manifest: %v", err)
			}
			if m.Type != "MailApp" || m.Permissions != "ReadWriteItem" || len(m.ID) != 36 {
				t.Errorf("type %q, permissions %q, id %q", m.Type, m.Permissions, m.ID)
			}
			if len(m.AppDomains) != 1 || m.AppDomains[0] != origin {
				t.Errorf("app domains %q, want [%s]", m.AppDomains, origin)
			}
			query := "?host=outlook"
			if tc.sso {
				query += "&sso=1"
			}
			forms := map[string]string{}
			for _, f := range m.Forms {
				forms[f.Type] = f.Source.URL
			}
			want := map[string]string{"ItemRead": base + "/app/read" + query, "ItemEdit": base + "/app/compose" + query}
			for typ, u := range want {
				if forms[typ] != u {
					t.Errorf("form %s opens %q, want %q", typ, forms[typ], u)
				}
			}
			panes := map[string]string{}
			for _, u := range m.Overrides.Inner.URLs {
				panes[u.ID] = u.URL
			}
			if panes["ReadPane"] != want["ItemRead"] || panes["ComposePane"] != want["ItemEdit"] {
				t.Errorf("task pane URLs %v, want %v", panes, want)
			}
			urls := []string{m.IconURL.URL, m.HiResIcon.URL, m.SupportURL.URL}
			for _, img := range m.Overrides.Inner.Images {
				urls = append(urls, img.URL)
			}
			for _, u := range urls {
				if !strings.HasPrefix(u, base+"/app/") {
					t.Errorf("URL %q is not under %s/app/", u, base)
				}
			}
			if wa := m.Overrides.Inner.WebApp; tc.sso != (wa != nil) {
				t.Errorf("WebApplicationInfo present %v, want %v", wa != nil, tc.sso)
			} else if wa != nil && (wa.ID != tc.addIn.ClientID || wa.Resource != tc.addIn.Resource) {
				t.Errorf("WebApplicationInfo %+v, want id %q resource %q", *wa, tc.addIn.ClientID, tc.addIn.Resource)
			}
			if tc.golden != "" {
				golden(t, filepath.Join("testdata", tc.golden), body)
			}
		})
	}
}

// TestManifestIDStable: one public URL keeps one add-in id across restarts; another deployment gets its own.
func TestManifestIDStable(t *testing.T) {
	id := func(u string) string {
		var m manifest
		if err := xml.Unmarshal(getManifest(t, webServer(t, server.AddIn{PublicURL: u})), &m); err != nil {
			t.Fatal(err)
		}
		return m.ID
	}
	a, b, c := id("https://a.contoso.com"), id("https://a.contoso.com"), id("https://b.contoso.com")
	if a != b || a == c {
		t.Errorf("ids %s %s %s: want the first two equal and the third different", a, b, c)
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output (run with -update to accept):\n%s", path, got)
	}
}

func TestAppPages(t *testing.T) {
	ts := webServer(t, server.AddIn{})
	tests := []struct {
		path     string
		status   int
		ctype    string
		contains string
	}{
		{"/app/", 200, "text/html", `<script type="module" crossorigin src="/app/assets/app.js">`},
		{"/app/compose?host=outlook", 200, "text/html", `<main id="main"`},
		{"/app/read", 200, "text/html", `<main id="main"`},
		{"/app/assets/app.js", 200, "text/javascript", "graphql-transport-ws"},
		{"/app/assets/index.css", 200, "text/css", "--accent"},
		{"/app/icon-64.png", 200, "image/png", "PNG"},
		{"/app/config.json", 200, "application/json", `"local":false`},
		{"/app/assets/missing.js", 404, "", ""},
		{"/app/missing.png", 404, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			res, err := http.Get(ts.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
			}
			if tc.status != 200 {
				return
			}
			if !strings.HasPrefix(res.Header.Get("Content-Type"), tc.ctype) {
				t.Errorf("content type %q, want %s", res.Header.Get("Content-Type"), tc.ctype)
			}
			if !bytes.Contains(body, []byte(tc.contains)) {
				t.Errorf("body lacks %q", tc.contains)
			}
			if tc.path == "/app/config.json" {
				return // answered afresh each time
			}
			// A second request with the ETag is answered 304: no hashes in names, so caches revalidate.
			req, _ := http.NewRequest("GET", ts.URL+tc.path, nil)
			req.Header.Set("If-None-Match", res.Header.Get("ETag"))
			again, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			again.Body.Close()
			if res.Header.Get("ETag") == "" || again.StatusCode != http.StatusNotModified {
				t.Errorf("ETag %q answered %d on revalidation, want 304", res.Header.Get("ETag"), again.StatusCode)
			}
		})
	}
	res, err := noRedirect.Get(ts.URL + "/app")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != "/app/" {
		t.Errorf("/app answered %d to %q, want a redirect to /app/", res.StatusCode, res.Header.Get("Location"))
	}
}
