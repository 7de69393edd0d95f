package followed_test

import (
	"context"
	"strings"
	"testing"

	"github.com/engage-email/engage/auth"
	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/store/sqlite"
)

// TestTokenIn: a body Outlook sent is tied to the followed message it renders by a tracking token that
// verifies, and only by one of this Engage's.
func TestTokenIn(t *testing.T) {
	ctx := context.Background()
	db := sqlite.OpenTemp(t)
	keys, err := followed.LoadOrCreateKeyRing(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	svc, err := followed.NewService(db, keys, "https://engage.contoso.com", followed.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	other, err := followed.NewService(db, mustKeys(t), "https://engage.contoso.com", followed.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	rep := auth.Identity{Email: "rep@contoso.com"}
	html := `<p>Hello, see <a href="https://example.com/offer">the offer</a>.</p>`
	recipients := []followed.Recipient{{Email: "ann@fabrikam.com", Kind: followed.KindTo}, {Email: "bob@fabrikam.com", Kind: followed.KindCc}}
	shared, err := svc.Follow(ctx, rep, followed.FollowInput{Subject: "Offer", HTML: html, Recipients: recipients, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	each, err := svc.Follow(ctx, rep, followed.FollowInput{Subject: "Offer", HTML: html, Recipients: recipients, Follow: true, Individual: true})
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := other.Follow(ctx, rep, followed.FollowInput{Subject: "Offer", HTML: html, Recipients: recipients, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	altered := shared.Renders[0].HTML
	for _, kind := range []string{"o", "c", "a", "h"} {
		altered = strings.ReplaceAll(altered, "/t/"+kind+"/", "/t/"+kind+"/A")
	}
	for _, c := range []struct {
		name      string
		html      string
		ok        bool
		message   string
		recipient int
	}{
		{"the shared render", shared.Renders[0].HTML, true, shared.ID, followed.Shared},
		{"an individual render", each.Renders[1].HTML, true, each.ID, 1},
		{"quoted in Outlook's HTML", "<html><body><div>" + strings.ReplaceAll(each.Renders[0].HTML, `"`, `'`) + "</div></body></html>", true, each.ID, 0},
		{"signed by another Engage's keys", foreign.Renders[0].HTML, false, "", 0},
		{"altered tokens", altered, false, "", 0},
		{"no token", html, false, "", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			tok, ok := svc.TokenIn(c.html)
			if ok != c.ok || (ok && (tok.MessageID != c.message || tok.Recipient != c.recipient)) {
				t.Fatalf("token %+v %v, want message %q recipient %d %v", tok, ok, c.message, c.recipient, c.ok)
			}
		})
	}
}

func mustKeys(t *testing.T) *followed.KeyRing {
	t.Helper()
	keys, err := followed.LoadOrCreateKeyRing(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	return keys
}
