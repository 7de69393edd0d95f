package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/engage-email/engage/auth"
	"github.com/engage-email/engage/followed"
)

// config is every setting Engage reads, once, from the environment.
type config struct {
	Addr                 string
	PublicURL            string
	DataDir              string
	MongoURI             string
	Admins               []string
	Integrations         []string // local mode: callers that may read the response feed (a CRM)
	WebhookAllowHTTP     bool     // webhooks may use plain http
	WebhookAllowPrivate  bool     // webhooks may reach loopback, private and other non-public addresses
	OptOutLinks          bool     // renders for one recipient carry an opt-out link
	AllowRemoteLocalMode bool
	TrackingKey          string
	TrustedProxies       []string
	AllowedOrigins       []string
	BodyLimit            int64
	MaxHTMLBytes         int
	MaxAttachmentBytes   int64 // largest file added to a message
	MaxMailBytes         int64 // most the files attached to one mail itself may total
	Introspection        bool
	SQLiteSynchronous    string
	ShutdownGrace        time.Duration
	SpoolAfter           time.Duration // a tracking commit slower than this is spooled
	MachineRules         string        // machine-label rules file, reread when it changes; "" = built-in defaults
	LogLevel             string
	PprofAddr            string // loopback host:port for runtime profiles; "" serves none
	MetricsAddr          string // host:port serving /metrics for Prometheus; "" serves none
	// Instance names this process on the store's leases and in its log lines, so that an operator of
	// several instances sees which one holds a job; "" takes the host name and a unique suffix at start.
	Instance string
	// Microsoft 365: with a tenant id Engage runs in tenant mode (Entra ID sign-in, mail through Graph).
	TenantID, ClientID, ClientSecret string
	ClientCertificate                string // PEM file: certificate and private key, instead of the secret
	APIAudience                      string // Engage's API: api://<client-id> or the client id
	GraphURL, AuthorityURL           string
	TenantDomains                    []string // colleagues' domains, whose mailbox zones are read; empty: the senders'
}

// loadConfig reads and validates the environment; getenv is os.Getenv outside tests.
func loadConfig(getenv func(string) string) (config, error) {
	c := config{
		Addr:               "127.0.0.1:8080",
		PublicURL:          "http://127.0.0.1:8080",
		DataDir:            "./engage-data",
		BodyLimit:          10 << 20,
		MaxHTMLBytes:       5 << 20,
		MaxAttachmentBytes: 150 << 20,
		MaxMailBytes:       112 << 20,
		Introspection:      true,
		SQLiteSynchronous:  "NORMAL",
		ShutdownGrace:      15 * time.Second,
		SpoolAfter:         2 * time.Second,
		LogLevel:           "info",
	}
	var errs []error
	str := func(name string, dst *string) {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			*dst = v
		}
	}
	list := func(name string, dst *[]string) {
		for _, v := range strings.Split(getenv(name), ",") {
			if v = strings.TrimSpace(v); v != "" {
				*dst = append(*dst, v)
			}
		}
	}
	boolean := func(name string, dst *bool) {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: want true or false", name, v))
				return
			}
			*dst = b
		}
	}
	integer := func(name string, dst *int64, min, max int64) {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < min || n > max {
				errs = append(errs, fmt.Errorf("%s=%q: want a whole number from %d to %d", name, v, min, max))
				return
			}
			*dst = n
		}
	}
	str("ENGAGE_ADDR", &c.Addr)
	str("ENGAGE_PUBLIC_URL", &c.PublicURL)
	str("ENGAGE_DATA_DIR", &c.DataDir)
	str("ENGAGE_MONGODB_URI", &c.MongoURI)
	list("ENGAGE_ADMINS", &c.Admins)
	list("ENGAGE_INTEGRATIONS", &c.Integrations)
	boolean("ENGAGE_WEBHOOK_ALLOW_HTTP", &c.WebhookAllowHTTP)
	boolean("ENGAGE_WEBHOOK_ALLOW_PRIVATE", &c.WebhookAllowPrivate)
	boolean("ENGAGE_OPT_OUT_LINKS", &c.OptOutLinks)
	boolean("ENGAGE_ALLOW_REMOTE_LOCAL_MODE", &c.AllowRemoteLocalMode)
	c.TrackingKey = strings.TrimSpace(getenv("ENGAGE_TRACKING_KEY"))
	list("ENGAGE_TRUSTED_PROXIES", &c.TrustedProxies)
	list("ENGAGE_ALLOWED_ORIGINS", &c.AllowedOrigins)
	// Byte limits stop short of what would overflow once a margin is added to them.
	integer("ENGAGE_BODY_LIMIT", &c.BodyLimit, 1024, 1<<30)
	html := int64(c.MaxHTMLBytes)
	integer("ENGAGE_MAX_HTML_BYTES", &html, 1024, 1<<30)
	c.MaxHTMLBytes = int(html)
	integer("ENGAGE_MAX_ATTACHMENT_BYTES", &c.MaxAttachmentBytes, 1, 1<<40)
	integer("ENGAGE_MAX_MAIL_ATTACHMENT_BYTES", &c.MaxMailBytes, 1, 1<<40)
	boolean("ENGAGE_INTROSPECTION", &c.Introspection)
	str("ENGAGE_SQLITE_SYNCHRONOUS", &c.SQLiteSynchronous)
	c.SQLiteSynchronous = strings.ToUpper(c.SQLiteSynchronous)
	if v := strings.TrimSpace(getenv("ENGAGE_SHUTDOWN_GRACE")); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("ENGAGE_SHUTDOWN_GRACE=%q: want a positive duration such as 15s", v))
		} else {
			c.ShutdownGrace = d
		}
	}
	if v := strings.TrimSpace(getenv("ENGAGE_SPOOL_AFTER")); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("ENGAGE_SPOOL_AFTER=%q: want a positive duration such as 2s", v))
		} else {
			c.SpoolAfter = d
		}
	}
	str("ENGAGE_LOG_LEVEL", &c.LogLevel)
	str("ENGAGE_PPROF_ADDR", &c.PprofAddr)
	str("ENGAGE_METRICS_ADDR", &c.MetricsAddr)
	str("ENGAGE_INSTANCE", &c.Instance)
	if c.Instance == "" {
		c.Instance = instanceName()
	}
	str("ENGAGE_MACHINE_RULES", &c.MachineRules)
	str("ENGAGE_TENANT_ID", &c.TenantID)
	str("ENGAGE_CLIENT_ID", &c.ClientID)
	c.ClientSecret = strings.TrimSpace(getenv("ENGAGE_CLIENT_SECRET"))
	str("ENGAGE_CLIENT_CERTIFICATE", &c.ClientCertificate)
	str("ENGAGE_API_AUDIENCE", &c.APIAudience)
	list("ENGAGE_TENANT_DOMAINS", &c.TenantDomains)
	c.GraphURL, c.AuthorityURL = "https://graph.microsoft.com/v1.0", "https://login.microsoftonline.com"
	str("ENGAGE_GRAPH_URL", &c.GraphURL)
	str("ENGAGE_AUTHORITY_URL", &c.AuthorityURL)
	errs = append(errs, c.checkTenant()...)

	host, port, err := net.SplitHostPort(c.Addr)
	if _, perr := strconv.ParseUint(port, 10, 16); err != nil || perr != nil {
		errs = append(errs, fmt.Errorf("ENGAGE_ADDR=%q: want host:port with a port from 0 to 65535, such as 127.0.0.1:8080", c.Addr))
	} else if c.TenantID == "" && !c.AllowRemoteLocalMode && !loopback(host) {
		errs = append(errs, fmt.Errorf("ENGAGE_ADDR=%q: local mode trusts the %s header, so it listens only on loopback; "+
			"set ENGAGE_ALLOW_REMOTE_LOCAL_MODE=true to listen on %s anyway", c.Addr, auth.LocalHeader, host))
	}
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.RawQuery != "" || u.Fragment != "" {
		errs = append(errs, fmt.Errorf("ENGAGE_PUBLIC_URL=%q: want an absolute http(s) URL such as https://engage.example.com", c.PublicURL))
	}
	for _, a := range c.Admins {
		if _, err := auth.NormalizeEmail(a); err != nil {
			errs = append(errs, fmt.Errorf("ENGAGE_ADMINS: %v", err))
		}
	}
	for _, p := range c.TrustedProxies {
		if _, _, err := net.ParseCIDR(p); err != nil && net.ParseIP(p) == nil {
			errs = append(errs, fmt.Errorf("ENGAGE_TRUSTED_PROXIES: %q is not an address or CIDR, such as 10.0.0.0/8", p))
		}
	}
	for _, o := range c.AllowedOrigins {
		if u, err := url.Parse(o); o != "*" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			strings.TrimRight(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "") {
			errs = append(errs, fmt.Errorf("ENGAGE_ALLOWED_ORIGINS: %q is not an origin, such as https://outlook.office.com", o))
		}
	}
	for _, a := range c.Integrations {
		if _, err := auth.NormalizeEmail(a); err != nil {
			errs = append(errs, fmt.Errorf("ENGAGE_INTEGRATIONS: %v", err))
		}
	}
	for _, d := range c.TenantDomains {
		if _, err := auth.NormalizeEmail("colleague@" + d); err != nil || strings.ContainsAny(d, "@<>") {
			errs = append(errs, fmt.Errorf("ENGAGE_TENANT_DOMAINS: %q is not a domain such as contoso.com", d))
		}
	}
	if c.MongoURI != "" && !strings.HasPrefix(c.MongoURI, "mongodb://") && !strings.HasPrefix(c.MongoURI, "mongodb+srv://") {
		errs = append(errs, errors.New("ENGAGE_MONGODB_URI: want a mongodb:// or mongodb+srv:// connection string"))
	}
	if c.MongoURI != "" && c.TrackingKey == "" {
		errs = append(errs, errors.New("ENGAGE_MONGODB_URI is set: set ENGAGE_TRACKING_KEY too, so that every instance "+
			"sharing the store signs and verifies tracking links with the same keys"))
	}
	if c.SQLiteSynchronous != "NORMAL" && c.SQLiteSynchronous != "FULL" {
		errs = append(errs, fmt.Errorf("ENGAGE_SQLITE_SYNCHRONOUS=%q: want NORMAL or FULL", c.SQLiteSynchronous))
	}
	if host, _, err := net.SplitHostPort(c.PprofAddr); c.PprofAddr != "" && (err != nil || !loopback(host)) {
		errs = append(errs, fmt.Errorf("ENGAGE_PPROF_ADDR=%q: want a loopback host:port such as 127.0.0.1:6060", c.PprofAddr))
	}
	if err := c.checkMetricsAddr(); err != nil {
		errs = append(errs, err)
	}
	if len(c.Instance) > 100 || strings.ContainsFunc(c.Instance, func(r rune) bool { return r < '!' || r > '~' }) {
		errs = append(errs, fmt.Errorf("ENGAGE_INSTANCE=%q: want at most 100 printable characters without spaces", c.Instance))
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("ENGAGE_LOG_LEVEL=%q: want debug, info, warn or error", c.LogLevel))
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("config: %w", errors.Join(errs...))
	}
	return c, nil
}

// instanceName is the default ENGAGE_INSTANCE: the host name, which an operator recognises, and a
// unique suffix, since two processes on one host must not share leases.
func instanceName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "engage"
	}
	return host + "-" + followed.NewID(time.Now())
}

// checkTenant validates the Microsoft 365 settings: all or nothing, so a half-configured tenant never
// falls back to local mode's trust in a header.
func (c config) checkTenant() []error {
	var errs []error
	for _, u := range []struct{ name, value string }{{"ENGAGE_GRAPH_URL", c.GraphURL}, {"ENGAGE_AUTHORITY_URL", c.AuthorityURL}} {
		if p, err := url.Parse(u.value); err != nil || p.Scheme != "https" || p.Host == "" {
			errs = append(errs, fmt.Errorf("%s=%q: want an absolute https URL", u.name, u.value))
		}
	}
	if c.TenantID == "" {
		if c.ClientID != "" || c.ClientSecret != "" || c.ClientCertificate != "" || c.APIAudience != "" {
			errs = append(errs, errors.New("ENGAGE_CLIENT_ID, ENGAGE_CLIENT_SECRET, ENGAGE_CLIENT_CERTIFICATE or ENGAGE_API_AUDIENCE "+
				"is set without ENGAGE_TENANT_ID: set the tenant too, or unset them for local mode"))
		}
		return errs
	}
	if c.ClientID == "" {
		errs = append(errs, errors.New("ENGAGE_TENANT_ID is set: ENGAGE_CLIENT_ID is required too"))
	}
	if c.ClientSecret == "" && c.ClientCertificate == "" {
		errs = append(errs, errors.New("ENGAGE_TENANT_ID is set: give ENGAGE_CLIENT_SECRET or ENGAGE_CLIENT_CERTIFICATE"))
	}
	if c.ClientSecret != "" && c.ClientCertificate != "" {
		errs = append(errs, errors.New("ENGAGE_CLIENT_SECRET and ENGAGE_CLIENT_CERTIFICATE are both set: give one"))
	}
	if c.APIAudience == "" {
		errs = append(errs, errors.New("ENGAGE_TENANT_ID is set: ENGAGE_API_AUDIENCE (api://<client-id>) is required too"))
	}
	return errs
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
