package main

import (
	"os"
	"strings"
	"testing"
)

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, c config)
	}{
		{name: "defaults", check: func(t *testing.T, c config) {
			if c.Addr != "127.0.0.1:8080" || c.PublicURL != "http://127.0.0.1:8080" || c.DataDir != "./engage-data" || c.BodyLimit != 10<<20 {
				t.Fatalf("defaults %+v", c)
			}
		}},
		{name: "lists and numbers", env: map[string]string{"ENGAGE_ADMINS": "a@x.com, b@x.com", "ENGAGE_BODY_LIMIT": "2048",
			"ENGAGE_SQLITE_SYNCHRONOUS": "full"}, check: func(t *testing.T, c config) {
			if len(c.Admins) != 2 || c.BodyLimit != 2048 || c.SQLiteSynchronous != "FULL" {
				t.Fatalf("%+v", c)
			}
		}},
		{name: "remote listen refused in local mode", env: map[string]string{"ENGAGE_ADDR": "0.0.0.0:8080"}, wantErr: "ENGAGE_ALLOW_REMOTE_LOCAL_MODE"},
		{name: "remote listen allowed when asked", env: map[string]string{"ENGAGE_ADDR": "0.0.0.0:8080", "ENGAGE_ALLOW_REMOTE_LOCAL_MODE": "true"}},
		{name: "localhost is loopback", env: map[string]string{"ENGAGE_ADDR": "localhost:9000"}},
		{name: "bad addr", env: map[string]string{"ENGAGE_ADDR": "8080"}, wantErr: "ENGAGE_ADDR"},
		{name: "a named port", env: map[string]string{"ENGAGE_ADDR": "127.0.0.1:abc"}, wantErr: "ENGAGE_ADDR=\"127.0.0.1:abc\": want host:port with a port"},
		{name: "a port out of range", env: map[string]string{"ENGAGE_ADDR": "127.0.0.1:99999"}, wantErr: "a port from 0 to 65535"},
		{name: "an attachment limit that would overflow", env: map[string]string{"ENGAGE_MAX_ATTACHMENT_BYTES": "9223372036854775807"},
			wantErr: "ENGAGE_MAX_ATTACHMENT_BYTES=\"9223372036854775807\": want a whole number from 1 to"},
		{name: "a body limit too large", env: map[string]string{"ENGAGE_BODY_LIMIT": "4294967296"}, wantErr: "ENGAGE_BODY_LIMIT"},
		{name: "a trusted proxy that is no address", env: map[string]string{"ENGAGE_TRUSTED_PROXIES": "10.0.0.0/8, notacidr"},
			wantErr: "ENGAGE_TRUSTED_PROXIES: \"notacidr\""},
		{name: "trusted proxies", env: map[string]string{"ENGAGE_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.7, 2001:db8::/32"}},
		{name: "an allowed origin that is no origin", env: map[string]string{"ENGAGE_ALLOWED_ORIGINS": "notaurl"},
			wantErr: "ENGAGE_ALLOWED_ORIGINS: \"notaurl\""},
		{name: "an allowed origin with a path", env: map[string]string{"ENGAGE_ALLOWED_ORIGINS": "https://outlook.office.com/mail"},
			wantErr: "ENGAGE_ALLOWED_ORIGINS"},
		{name: "allowed origins", env: map[string]string{"ENGAGE_ALLOWED_ORIGINS": "https://outlook.office.com, https://outlook.office365.com/, *"}},
		{name: "bad public url", env: map[string]string{"ENGAGE_PUBLIC_URL": "engage.example.com"}, wantErr: "ENGAGE_PUBLIC_URL"},
		{name: "bad bool", env: map[string]string{"ENGAGE_INTROSPECTION": "maybe"}, wantErr: "ENGAGE_INTROSPECTION"},
		{name: "bad number", env: map[string]string{"ENGAGE_BODY_LIMIT": "ten"}, wantErr: "ENGAGE_BODY_LIMIT"},
		{name: "bad admin", env: map[string]string{"ENGAGE_ADMINS": "root"}, wantErr: "ENGAGE_ADMINS"},
		{name: "bad grace", env: map[string]string{"ENGAGE_SHUTDOWN_GRACE": "-1s"}, wantErr: "ENGAGE_SHUTDOWN_GRACE"},
		{name: "bad log level", env: map[string]string{"ENGAGE_LOG_LEVEL": "loud"}, wantErr: "ENGAGE_LOG_LEVEL"},
		{name: "pprof on loopback", env: map[string]string{"ENGAGE_PPROF_ADDR": "127.0.0.1:6060"}},
		{name: "an instance named", env: map[string]string{"ENGAGE_INSTANCE": "eu-west-2"}, check: func(t *testing.T, c config) {
			if c.Instance != "eu-west-2" {
				t.Fatalf("Instance = %q", c.Instance)
			}
		}},
		{name: "an instance unnamed gets the host name and a unique suffix", check: func(t *testing.T, c config) {
			other, _ := loadConfig(func(string) string { return "" })
			host, _ := os.Hostname()
			if !strings.HasPrefix(c.Instance, host+"-") || c.Instance == other.Instance {
				t.Fatalf("Instance = %q and %q, want %s-<unique>", c.Instance, other.Instance, host)
			}
		}},
		{name: "an instance name with a space", env: map[string]string{"ENGAGE_INSTANCE": "eu west"}, wantErr: "ENGAGE_INSTANCE"},
		{name: "an instance name too long", env: map[string]string{"ENGAGE_INSTANCE": strings.Repeat("x", 101)}, wantErr: "ENGAGE_INSTANCE"},
		{name: "pprof off loopback refused", env: map[string]string{"ENGAGE_PPROF_ADDR": "0.0.0.0:6060"}, wantErr: "ENGAGE_PPROF_ADDR"},
		{name: "metrics off by default", check: func(t *testing.T, c config) {
			if c.MetricsAddr != "" {
				t.Fatalf("MetricsAddr = %q, want none", c.MetricsAddr)
			}
		}},
		{name: "metrics on every interface", env: map[string]string{"ENGAGE_METRICS_ADDR": "0.0.0.0:9090"}, check: func(t *testing.T, c config) {
			if c.MetricsAddr != "0.0.0.0:9090" {
				t.Fatalf("MetricsAddr = %q", c.MetricsAddr)
			}
		}},
		{name: "metrics on an empty host", env: map[string]string{"ENGAGE_METRICS_ADDR": ":9090"}},
		{name: "metrics on loopback", env: map[string]string{"ENGAGE_METRICS_ADDR": "127.0.0.1:9090"}},
		{name: "metrics on a host name", env: map[string]string{"ENGAGE_METRICS_ADDR": "metrics.internal:9090"}},
		{name: "metrics on IPv6", env: map[string]string{"ENGAGE_METRICS_ADDR": "[::1]:9090"}},
		{name: "metrics beside the public port on another address",
			env: map[string]string{"ENGAGE_ADDR": "127.0.0.1:8080", "ENGAGE_METRICS_ADDR": "10.0.0.5:8080"}},
		{name: "metrics without a port", env: map[string]string{"ENGAGE_METRICS_ADDR": "9090"}, wantErr: "ENGAGE_METRICS_ADDR"},
		{name: "metrics port zero", env: map[string]string{"ENGAGE_METRICS_ADDR": "127.0.0.1:0"}, wantErr: "port number"},
		{name: "metrics port out of range", env: map[string]string{"ENGAGE_METRICS_ADDR": "127.0.0.1:70000"}, wantErr: "port number"},
		{name: "metrics named port", env: map[string]string{"ENGAGE_METRICS_ADDR": "127.0.0.1:http"}, wantErr: "port number"},
		{name: "metrics as a URL", env: map[string]string{"ENGAGE_METRICS_ADDR": "http://0.0.0.0:9090"}, wantErr: "ENGAGE_METRICS_ADDR"},
		{name: "metrics host with a space", env: map[string]string{"ENGAGE_METRICS_ADDR": "metrics host:9090"}, wantErr: "IP address or a host name"},
		{name: "metrics on the public port", env: map[string]string{"ENGAGE_METRICS_ADDR": "127.0.0.1:8080"}, wantErr: "same port as ENGAGE_ADDR"},
		{name: "metrics on all interfaces of the public port", env: map[string]string{"ENGAGE_METRICS_ADDR": ":8080"}, wantErr: "same port as ENGAGE_ADDR"},
		{name: "metrics on the public port by name", env: map[string]string{"ENGAGE_ADDR": "localhost:8080", "ENGAGE_METRICS_ADDR": "127.0.0.1:8080"},
			wantErr: "same port as ENGAGE_ADDR"},
		{name: "metrics on the pprof port", env: map[string]string{"ENGAGE_PPROF_ADDR": "127.0.0.1:6060", "ENGAGE_METRICS_ADDR": "0.0.0.0:6060"},
			wantErr: "same port as ENGAGE_PPROF_ADDR"},
		{name: "bad synchronous", env: map[string]string{"ENGAGE_SQLITE_SYNCHRONOUS": "OFF"}, wantErr: "ENGAGE_SQLITE_SYNCHRONOUS"},
		{name: "tenant mode", env: tenantEnv(nil), check: func(t *testing.T, c config) {
			if c.TenantID != "t" || c.ClientID != "c" || c.ClientSecret != "s" || c.APIAudience != "api://c" ||
				c.GraphURL != "https://graph.microsoft.com/v1.0" || c.AuthorityURL != "https://login.microsoftonline.com" {
				t.Fatalf("%+v", c)
			}
		}},
		{name: "tenant domains", env: tenantEnv(map[string]string{"ENGAGE_TENANT_DOMAINS": "contoso.com, contoso.fr"}), check: func(t *testing.T, c config) {
			if len(c.TenantDomains) != 2 || c.TenantDomains[0] != "contoso.com" || c.TenantDomains[1] != "contoso.fr" {
				t.Fatalf("TenantDomains = %q", c.TenantDomains)
			}
		}},
		{name: "an address is not a tenant domain", env: tenantEnv(map[string]string{"ENGAGE_TENANT_DOMAINS": "rep@contoso.com"}),
			wantErr: "ENGAGE_TENANT_DOMAINS"},
		{name: "a tenant domain with a space", env: tenantEnv(map[string]string{"ENGAGE_TENANT_DOMAINS": "contoso com"}),
			wantErr: "ENGAGE_TENANT_DOMAINS"},
		{name: "tenant mode listens remotely", env: tenantEnv(map[string]string{"ENGAGE_ADDR": "0.0.0.0:8080"})},
		{name: "tenant with a certificate", env: tenantEnv(map[string]string{"ENGAGE_CLIENT_SECRET": "", "ENGAGE_CLIENT_CERTIFICATE": "app.pem"})},
		{name: "tenant without client id", env: tenantEnv(map[string]string{"ENGAGE_CLIENT_ID": ""}), wantErr: "ENGAGE_CLIENT_ID"},
		{name: "tenant without credential", env: tenantEnv(map[string]string{"ENGAGE_CLIENT_SECRET": ""}), wantErr: "ENGAGE_CLIENT_CERTIFICATE"},
		{name: "tenant with secret and certificate", env: tenantEnv(map[string]string{"ENGAGE_CLIENT_CERTIFICATE": "app.pem"}), wantErr: "give one"},
		{name: "tenant without audience", env: tenantEnv(map[string]string{"ENGAGE_API_AUDIENCE": ""}), wantErr: "ENGAGE_API_AUDIENCE"},
		{name: "client settings without tenant", env: map[string]string{"ENGAGE_CLIENT_ID": "c"}, wantErr: "ENGAGE_TENANT_ID"},
		{name: "plain-http graph url", env: tenantEnv(map[string]string{"ENGAGE_GRAPH_URL": "http://graph.example"}), wantErr: "ENGAGE_GRAPH_URL"},
		{name: "several errors at once", env: map[string]string{"ENGAGE_ADDR": "x", "ENGAGE_LOG_LEVEL": "loud"}, wantErr: "ENGAGE_LOG_LEVEL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadConfig(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

// tenantEnv is a complete tenant-mode environment changed by edit.
func tenantEnv(edit map[string]string) map[string]string {
	env := map[string]string{"ENGAGE_TENANT_ID": "t", "ENGAGE_CLIENT_ID": "c", "ENGAGE_CLIENT_SECRET": "s", "ENGAGE_API_AUDIENCE": "api://c"}
	for k, v := range edit {
		env[k] = v
	}
	return env
}
