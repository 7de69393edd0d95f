package m365

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	msalerrors "github.com/AzureAD/microsoft-authentication-library-for-go/apps/errors"
)

// graphScope asks for every Graph permission the app was granted (app-only) or consented (delegated).
const graphScope = "https://graph.microsoft.com/.default"

// tokens acquires Graph access tokens with MSAL, which caches them per flow (and per user assertion).
type tokens struct {
	app confidential.Client
}

func newTokens(cfg Config) (*tokens, error) {
	cred, err := credential(cfg)
	if err != nil {
		return nil, err
	}
	authority := strings.TrimRight(cfg.AuthorityURL, "/") + "/" + cfg.TenantID
	opts := []confidential.Option{confidential.WithHTTPClient(cfg.HTTPClient)}
	if cfg.AuthorityURL != DefaultAuthorityURL {
		// A sovereign cloud or test authority is not in Microsoft's instance metadata.
		opts = append(opts, confidential.WithInstanceDiscovery(false))
	}
	app, err := confidential.New(authority, cfg.ClientID, cred, opts...)
	if err != nil {
		return nil, fmt.Errorf("m365: MSAL client for %s: %w", authority, err)
	}
	return &tokens{app: app}, nil
}

// credential proves the application: a certificate when one is configured, else the client secret.
func credential(cfg Config) (confidential.Credential, error) {
	if cfg.CertificatePath != "" {
		pemData, err := os.ReadFile(cfg.CertificatePath)
		if err != nil {
			return confidential.Credential{}, fmt.Errorf("m365: read certificate: %w", err)
		}
		certs, key, err := confidential.CertFromPEM(pemData, "")
		if err != nil {
			return confidential.Credential{}, fmt.Errorf("m365: parse certificate %s: %w", cfg.CertificatePath, err)
		}
		cred, err := confidential.NewCredFromCert(certs, key)
		if err != nil {
			return confidential.Credential{}, fmt.Errorf("m365: certificate credential: %w", err)
		}
		return cred, nil
	}
	if cfg.ClientSecret == "" {
		return confidential.Credential{}, errors.New("m365: a client secret or a certificate path is required")
	}
	cred, err := confidential.NewCredFromSecret(cfg.ClientSecret)
	if err != nil {
		return confidential.Credential{}, fmt.Errorf("m365: secret credential: %w", err)
	}
	return cred, nil
}

// forCaller returns a Graph token: on behalf of the user when the caller brought a token, else app-only.
func (t *tokens) forCaller(ctx context.Context, c Caller) (string, error) {
	if c.UserToken != "" {
		res, err := t.app.AcquireTokenOnBehalfOf(ctx, c.UserToken, []string{graphScope})
		if err != nil {
			return "", tokenError(fmt.Sprintf("on-behalf-of token for %s", c.User), err)
		}
		return res.AccessToken, nil
	}
	res, err := t.app.AcquireTokenByCredential(ctx, []string{graphScope})
	if err != nil {
		return "", tokenError("app-only token", err)
	}
	return res.AccessToken, nil
}

// tokenError marks a refusal by Entra ID (bad secret, expired user token, missing consent) as
// ErrUnauthorized so callers can tell it from a network failure.
func tokenError(what string, err error) error {
	var call msalerrors.CallErr
	if errors.As(err, &call) && call.Resp != nil && call.Resp.StatusCode >= 400 && call.Resp.StatusCode < 500 {
		return fmt.Errorf("m365: %s: %w: %w", what, ErrUnauthorized, err)
	}
	return fmt.Errorf("m365: %s: %w", what, err)
}
