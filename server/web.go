package server

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
	"text/template"
	"time"

	"github.com/engage-email/engage/web"
)

// AddIn is what the Outlook manifest announces: where Engage is reached and, with a tenant, the Entra ID
// application Outlook asks for single sign-on tokens.
type AddIn struct {
	// PublicURL is Engage's address as Outlook reaches it; empty takes the address the manifest was
	// fetched from (fine on a developer's machine, not behind a proxy).
	PublicURL string
	// ClientID and Resource (api://…) fill WebApplicationInfo; without a client id there is none.
	ClientID, Resource string
}

// appCSP lets the pages load only their own code, and office.js from Microsoft inside Outlook.
const appCSP = "default-src 'self'; script-src 'self' https://appsforoffice.microsoft.com; " +
	"style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'"

// staticFile is one built file, read once from the embedded tree.
type staticFile struct {
	body  []byte
	ctype string
	etag  string
}

// webRoutes serves the add-in: its manifest at /addin/manifest.xml and the pages under /app/, where
// any path that is not a built file is the single page app's index, so /app/compose and /app/read load.
func (s *Server) webRoutes(mux *http.ServeMux) error {
	assets, err := web.Assets()
	if err != nil {
		return err
	}
	files := map[string]staticFile{}
	err = fs.WalkDir(assets, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(assets, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ctype := mime.TypeByExtension(path.Ext(p))
		if ctype == "" {
			ctype = http.DetectContentType(b)
		}
		files[p] = staticFile{body: b, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		return fmt.Errorf("server: reading the built pages: %w", err)
	}
	mux.Handle("GET /app", http.RedirectHandler("/app/", http.StatusMovedPermanently))
	mux.HandleFunc("GET /app/config.json", s.appConfig)
	mux.HandleFunc("GET /app/{path...}", func(w http.ResponseWriter, r *http.Request) {
		p := r.PathValue("path")
		f, ok := files[p]
		if !ok {
			if strings.HasPrefix(p, "assets/") || path.Ext(p) != "" {
				http.NotFound(w, r)
				return
			}
			f = files["index.html"]
			p = "index.html"
		}
		h := w.Header()
		h.Set("Content-Type", f.ctype)
		h.Set("ETag", f.etag)
		h.Set("Cache-Control", "no-cache") // revalidated by ETag: built names carry no hash
		h.Set("X-Content-Type-Options", "nosniff")
		if p == "index.html" {
			h.Set("Content-Security-Policy", appCSP)
		}
		http.ServeContent(w, r, p, time.Time{}, bytes.NewReader(f.body))
	})
	mux.HandleFunc("GET /addin/manifest.xml", s.manifest)
	return nil
}

// appConfig tells the pages what kind of Engage they run against: local mode has an outbox and trusts
// the X-Engage-User header; a tenant signs people in through Outlook.
func (s *Server) appConfig(w http.ResponseWriter, _ *http.Request) {
	local := s.deps.Resolver != nil && s.deps.Resolver.LocalOutbox != nil
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	_ = json.NewEncoder(w).Encode(map[string]any{"local": local})
}

func (s *Server) manifest(w http.ResponseWriter, r *http.Request) {
	base := strings.TrimRight(s.opts.AddIn.PublicURL, "/")
	if base == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		http.Error(w, "the public URL is not an absolute URL", http.StatusInternalServerError)
		return
	}
	var out bytes.Buffer
	err = manifestTemplate.Execute(&out, manifestData{
		ID:       manifestID(base),
		Base:     base,
		Origin:   u.Scheme + "://" + u.Host,
		ClientID: s.opts.AddIn.ClientID,
		Resource: s.opts.AddIn.Resource,
	})
	if err != nil {
		s.deps.Log.ErrorContext(r.Context(), "manifest not rendered", "err", err)
		http.Error(w, "the manifest cannot be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.Header().Set("Content-Disposition", `inline; filename="manifest.xml"`)
	_, _ = w.Write(out.Bytes())
}

// manifestID is the add-in's GUID: stable for one public URL, so a redeployed Engage updates the
// add-in people installed rather than adding a second one, and distinct between deployments.
func manifestID(base string) string {
	h := sha1.Sum([]byte("engage-addin:" + base))
	h[6] = h[6]&0x0f | 0x50 // version 5 (name-based, SHA-1)
	h[8] = h[8]&0x3f | 0x80 // RFC 4122 variant
	x := hex.EncodeToString(h[:16])
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

type manifestData struct {
	ID, Base, Origin   string
	ClientID, Resource string
}

func xmlEscape(s string) (string, error) {
	var b strings.Builder
	if err := xml.EscapeText(&b, []byte(s)); err != nil {
		return "", err
	}
	return b.String(), nil
}

// manifestTemplate is the Outlook add-in manifest (XML, schema 1.1 with version overrides): a MailApp
// with a read and a compose task pane, ribbon buttons to open them, and single sign-on when a tenant's
// client id is configured. Every value is XML-escaped by the x function.
var manifestTemplate = template.Must(template.New("manifest").Funcs(template.FuncMap{"x": xmlEscape}).Parse(
	`<?xml version="1.0" encoding="UTF-8"?>
<OfficeApp xmlns="http://schemas.microsoft.com/office/appforoffice/1.1"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xmlns:bt="http://schemas.microsoft.com/office/officeappbasictypes/1.0"
  xmlns:mailappor="http://schemas.microsoft.com/office/mailappversionoverrides/1.0"
  xsi:type="MailApp">
  <Id>{{x .ID}}</Id>
  <Version>1.0.0.0</Version>
  <ProviderName>Engage</ProviderName>
  <DefaultLocale>en-US</DefaultLocale>
  <DisplayName DefaultValue="Engage"/>
  <Description DefaultValue="Follow the emails you send: opens, clicks, replies, first-open alerts and the best time to send."/>
  <IconUrl DefaultValue="{{x .Base}}/app/icon-64.png"/>
  <HighResolutionIconUrl DefaultValue="{{x .Base}}/app/icon-128.png"/>
  <SupportUrl DefaultValue="{{x .Base}}/app/"/>
  <AppDomains>
    <AppDomain>{{x .Origin}}</AppDomain>
  </AppDomains>
  <Hosts>
    <Host Name="Mailbox"/>
  </Hosts>
  <Requirements>
    <Sets>
      <Set Name="Mailbox" MinVersion="1.1"/>
    </Sets>
  </Requirements>
  <FormSettings>
    <Form xsi:type="ItemRead">
      <DesktopSettings>
        <SourceLocation DefaultValue="{{x .Base}}/app/read?host=outlook{{if .ClientID}}&amp;sso=1{{end}}"/>
        <RequestedHeight>300</RequestedHeight>
      </DesktopSettings>
    </Form>
    <Form xsi:type="ItemEdit">
      <DesktopSettings>
        <SourceLocation DefaultValue="{{x .Base}}/app/compose?host=outlook{{if .ClientID}}&amp;sso=1{{end}}"/>
      </DesktopSettings>
    </Form>
  </FormSettings>
  <Permissions>ReadWriteItem</Permissions>
  <Rule xsi:type="RuleCollection" Mode="Or">
    <Rule xsi:type="ItemIs" ItemType="Message" FormType="Edit"/>
    <Rule xsi:type="ItemIs" ItemType="Message" FormType="Read"/>
  </Rule>
  <DisableEntityHighlighting>false</DisableEntityHighlighting>
  <VersionOverrides xmlns="http://schemas.microsoft.com/office/mailappversionoverrides" xsi:type="VersionOverridesV1_0">
    <VersionOverrides xmlns="http://schemas.microsoft.com/office/mailappversionoverrides/1.1" xsi:type="VersionOverridesV1_1">
      <Requirements>
        <bt:Sets DefaultMinVersion="1.3">
          <bt:Set Name="Mailbox"/>
        </bt:Sets>
      </Requirements>
      <Hosts>
        <Host xsi:type="MailHost">
          <DesktopFormFactor>
            <ExtensionPoint xsi:type="MessageReadCommandSurface">
              <OfficeTab id="TabDefault">
                <Group id="engageReadGroup">
                  <Label resid="GroupLabel"/>
                  <Control xsi:type="Button" id="engageReadButton">
                    <Label resid="ReadLabel"/>
                    <Supertip>
                      <Title resid="ReadLabel"/>
                      <Description resid="ReadTip"/>
                    </Supertip>
                    <Icon>
                      <bt:Image size="16" resid="Icon16"/>
                      <bt:Image size="32" resid="Icon32"/>
                      <bt:Image size="80" resid="Icon80"/>
                    </Icon>
                    <Action xsi:type="ShowTaskpane">
                      <SourceLocation resid="ReadPane"/>
                    </Action>
                  </Control>
                </Group>
              </OfficeTab>
            </ExtensionPoint>
            <ExtensionPoint xsi:type="MessageComposeCommandSurface">
              <OfficeTab id="TabDefault">
                <Group id="engageComposeGroup">
                  <Label resid="GroupLabel"/>
                  <Control xsi:type="Button" id="engageComposeButton">
                    <Label resid="ComposeLabel"/>
                    <Supertip>
                      <Title resid="ComposeLabel"/>
                      <Description resid="ComposeTip"/>
                    </Supertip>
                    <Icon>
                      <bt:Image size="16" resid="Icon16"/>
                      <bt:Image size="32" resid="Icon32"/>
                      <bt:Image size="80" resid="Icon80"/>
                    </Icon>
                    <Action xsi:type="ShowTaskpane">
                      <SourceLocation resid="ComposePane"/>
                    </Action>
                  </Control>
                </Group>
              </OfficeTab>
            </ExtensionPoint>
          </DesktopFormFactor>
        </Host>
      </Hosts>
      <Resources>
        <bt:Images>
          <bt:Image id="Icon16" DefaultValue="{{x .Base}}/app/icon-16.png"/>
          <bt:Image id="Icon32" DefaultValue="{{x .Base}}/app/icon-32.png"/>
          <bt:Image id="Icon80" DefaultValue="{{x .Base}}/app/icon-80.png"/>
        </bt:Images>
        <bt:Urls>
          <bt:Url id="ReadPane" DefaultValue="{{x .Base}}/app/read?host=outlook{{if .ClientID}}&amp;sso=1{{end}}"/>
          <bt:Url id="ComposePane" DefaultValue="{{x .Base}}/app/compose?host=outlook{{if .ClientID}}&amp;sso=1{{end}}"/>
        </bt:Urls>
        <bt:ShortStrings>
          <bt:String id="GroupLabel" DefaultValue="Engage"/>
          <bt:String id="ReadLabel" DefaultValue="Engagement"/>
          <bt:String id="ComposeLabel" DefaultValue="Follow"/>
        </bt:ShortStrings>
        <bt:LongStrings>
          <bt:String id="ReadTip" DefaultValue="See who opened this email, on what device, and what they clicked."/>
          <bt:String id="ComposeTip" DefaultValue="Follow this email, pick a template and the best time to send."/>
        </bt:LongStrings>
      </Resources>{{if .ClientID}}
      <WebApplicationInfo>
        <Id>{{x .ClientID}}</Id>
        <Resource>{{x .Resource}}</Resource>
        <Scopes>
          <Scope>openid</Scope>
          <Scope>profile</Scope>
        </Scopes>
      </WebApplicationInfo>{{end}}
    </VersionOverrides>
  </VersionOverrides>
</OfficeApp>
`))
