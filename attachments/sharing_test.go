package attachments_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/engage-email/engage/attachments"
	"github.com/engage-email/engage/auth"
	"github.com/engage-email/engage/consent"
	"github.com/engage-email/engage/followed"
)

// The organisation's sharing setting decides whom a followed file's link lets in: RECIPIENTS (the
// default) names the message's recipients, customers outside the organisation included, and no one else.
func TestSharingSettingChoosesTheLink(t *testing.T) {
	const expiry = 30 * 24 * time.Hour
	now := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	anyone := consent.ShareAnyone
	tests := []struct {
		name    string
		policy  bool                       // ask consent for the setting; false: no policy, as some deployments run
		sharing *consent.AttachmentSharing // an admin's choice; nil keeps the default
		want    attachments.Link
	}{
		{"recipients by default", true, nil, attachments.Link{Scope: attachments.ScopeUsers,
			Recipients: []string{"ann@fabrikam.com", "bob@contoso.com", "carol@tailspin.com"}, Expires: now.Add(expiry)}},
		{"anyone", true, &anyone, attachments.Link{Scope: attachments.ScopeAnonymous, Expires: now.Add(expiry)}},
		{"no policy", false, nil, attachments.Link{Scope: attachments.ScopeOrganization, Expires: now.Add(expiry)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			var policy attachments.Policy
			if tc.policy {
				consents, err := consent.NewService(ctx, e.db, consent.Options{Log: slog.New(slog.DiscardHandler)})
				if err != nil {
					t.Fatal(err)
				}
				if tc.sharing != nil {
					admin := auth.Identity{Email: "admin@contoso.com", Admin: true}
					if _, err := consents.UpdateSettings(ctx, admin, consent.SettingsChange{AttachmentSharing: tc.sharing}); err != nil {
						t.Fatal(err)
					}
				}
				policy = consents
			}
			files := attachments.New(e.db, e.db, e.followed, e.drive, e.blobs, policy, attachments.Options{MaxBytes: 1 << 20,
				LinkExpiry: expiry, Now: func() time.Time { return now }})
			m, err := e.followed.Follow(ctx, rep, followed.FollowInput{Subject: "Offer", Follow: true, HTML: "<p>Hi</p>",
				Recipients: []followed.Recipient{{Email: "ann@fabrikam.com"}, {Email: "bob@contoso.com", Kind: followed.KindCc},
					{Email: "carol@tailspin.com", Kind: followed.KindBcc}}})
			if err != nil {
				t.Fatal(err)
			}
			a, err := files.Add(ctx, rep, m.ID, upload("offer.pdf", []byte("%PDF-1.7 offer")), true)
			if err != nil || !a.Shared {
				t.Fatalf("add: %+v, %v; want it shared", a, err)
			}
			got, err := e.drive.LinkOf(a.ShareURL)
			if err != nil {
				t.Fatal(err)
			}
			if got.Scope != tc.want.Scope || fmt.Sprint(got.Recipients) != fmt.Sprint(tc.want.Recipients) || !got.Expires.Equal(tc.want.Expires) {
				t.Fatalf("the drive was asked for %+v, want %+v", got, tc.want)
			}
		})
	}
}
