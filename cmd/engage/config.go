package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/engage-email/engage/auth"
)

// config is every setting Engage reads, once, from the environment.
type config struct {
	Addr                 string
	PublicURL            string
	DataDir              string
	MongoURI             string
	Admins               []string
	AllowRemoteLocalMode bool
	TrackingKey          string
	TrustedProxies       []string
	AllowedOrigins       []string
	BodyLimit            int64
	MaxHTMLBytes         int
	Introspection        bool
	SQLiteSynchronous    string
	ShutdownGrace        time.Duration
	SpoolAfter           time.Duration // a tracking commit slower than this is spooled
	LogLevel             string
}

// loadConfig reads and validates the environment; getenv is os.Getenv outside tests.
func loadConfig(getenv func(string) string) (config, error) {
	c := config{
		Addr:              "127.0.0.1:8080",
		PublicURL:         "http://127.0.0.1:8080",
		DataDir:           "./engage-data",
		BodyLimit:         10 << 20,
		MaxHTMLBytes:      5 << 20,
		Introspection:     true,
		SQLiteSynchronous: "NORMAL",
		ShutdownGrace:     15 * time.Second,
		SpoolAfter:        2 * time.Second,
		LogLevel:          "info",
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
	integer := func(name string, dst *int64, min int64) {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < min {
				errs = append(errs, fmt.Errorf("%s=%q: want a whole number of at least %d", name, v, min))
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
	boolean("ENGAGE_ALLOW_REMOTE_LOCAL_MODE", &c.AllowRemoteLocalMode)
	c.TrackingKey = strings.TrimSpace(getenv("ENGAGE_TRACKING_KEY"))
	list("ENGAGE_TRUSTED_PROXIES", &c.TrustedProxies)
	list("ENGAGE_ALLOWED_ORIGINS", &c.AllowedOrigins)
	integer("ENGAGE_BODY_LIMIT", &c.BodyLimit, 1024)
	html := int64(c.MaxHTMLBytes)
	integer("ENGAGE_MAX_HTML_BYTES", &html, 1024)
	c.MaxHTMLBytes = int(html)
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

	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil || port == "" {
		errs = append(errs, fmt.Errorf("ENGAGE_ADDR=%q: want host:port, such as 127.0.0.1:8080", c.Addr))
	} else if !c.AllowRemoteLocalMode && !loopback(host) {
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
	if c.MongoURI != "" {
		errs = append(errs, errors.New("ENGAGE_MONGODB_URI is set, but this build has only the embedded store: unset it"))
	}
	if c.SQLiteSynchronous != "NORMAL" && c.SQLiteSynchronous != "FULL" {
		errs = append(errs, fmt.Errorf("ENGAGE_SQLITE_SYNCHRONOUS=%q: want NORMAL or FULL", c.SQLiteSynchronous))
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

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
