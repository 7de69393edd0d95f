package consent_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/engage-email/engage/auth"
	"github.com/engage-email/engage/consent"
	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/store/sqlite"
)

var (
	admin = auth.Identity{Email: "admin@contoso.com", Admin: true}
	rep   = auth.Identity{Email: "rep@contoso.com"}
	t0    = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
)

func newService(t *testing.T) (*consent.Service, *sqlite.DB, *time.Time) {
	t.Helper()
	db := sqlite.OpenTemp(t)
	now := t0
	s, err := consent.NewService(context.Background(), db, consent.Options{Erasers: []consent.Eraser{db.FollowedEraser()},
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return s, db, &now
}

func TestVerdict(t *testing.T) {
	ctx := context.Background()
	s, _, now := newService(t)
	for target, p := range map[string]consent.Preference{"no@fabrikam.com": consent.DoNotAllow, "northwind.example": consent.DoNotAllow,
		"yes@northwind.example": consent.Allow, "optin.example": consent.Allow} {
		if _, err := s.SetPreference(ctx, admin, target, p, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Suppress(ctx, "bounced@fabrikam.com", "5.1.1 no such user", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Suppress(ctx, "brief@fabrikam.com", "4.2.2 mailbox full", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	yes := true
	tests := []struct {
		name     string
		change   consent.SettingsChange
		at       time.Duration
		rcpts    []string
		blocked  map[string]string
		tracking [2]bool // opens, links
	}{
		{"defaults", consent.SettingsChange{}, 0,
			[]string{"ann@fabrikam.com", "no@fabrikam.com", "bob@northwind.example", "yes@northwind.example", "bounced@fabrikam.com", "brief@fabrikam.com"},
			map[string]string{"no@fabrikam.com": "DO_NOT_ALLOW", "bob@northwind.example": "DOMAIN_DO_NOT_ALLOW",
				"bounced@fabrikam.com": "SUPPRESSED_BOUNCE", "brief@fabrikam.com": "SUPPRESSED_BOUNCE"}, [2]bool{true, true}},
		{"a suppression with an end runs out", consent.SettingsChange{}, 2 * time.Hour,
			[]string{"brief@fabrikam.com", "bounced@fabrikam.com"}, map[string]string{"bounced@fabrikam.com": "SUPPRESSED_BOUNCE"}, [2]bool{true, true}},
		{"consent required", consent.SettingsChange{RequireConsent: &yes}, 0,
			[]string{"ann@fabrikam.com", "yes@northwind.example", "x@optin.example"},
			map[string]string{"ann@fabrikam.com": "NO_CONSENT"}, [2]bool{true, true}},
		{"signals off", consent.SettingsChange{TrackOpens: new(bool), TrackLinks: new(bool)}, 0,
			[]string{"ann@fabrikam.com"}, map[string]string{}, [2]bool{false, false}},
		{"engagement off", consent.SettingsChange{Enabled: new(bool)}, 0,
			[]string{"ann@fabrikam.com", "yes@northwind.example"},
			map[string]string{"ann@fabrikam.com": "ENGAGEMENT_DISABLED", "yes@northwind.example": "ENGAGEMENT_DISABLED"}, [2]bool{true, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.UpdateSettings(ctx, admin, consent.SettingsChange{Enabled: &yes, TrackOpens: &yes, TrackLinks: &yes,
				RequireConsent: new(bool)}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.UpdateSettings(ctx, admin, tt.change); err != nil {
				t.Fatal(err)
			}
			*now = t0.Add(tt.at)
			defer func() { *now = t0 }()
			v, err := s.Verdict(ctx, tt.rcpts)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, b := range v.Blocked {
				got[b.Email] = b.Reason
			}
			if !reflect.DeepEqual(got, tt.blocked) || v.TrackOpens != tt.tracking[0] || v.TrackLinks != tt.tracking[1] {
				t.Fatalf("verdict %+v, want blocked %v tracking %v", v, tt.blocked, tt.tracking)
			}
		})
	}
}

func TestAdminOnlyOperationsChangeNothing(t *testing.T) {
	ctx := context.Background()
	s, _, _ := newService(t)
	days := 30
	ops := map[string]func(auth.Identity) error{
		"update settings": func(w auth.Identity) error {
			_, err := s.UpdateSettings(ctx, w, consent.SettingsChange{RetentionDays: &days})
			return err
		},
		"set preference": func(w auth.Identity) error {
			_, err := s.SetPreference(ctx, w, "a@x.com", consent.DoNotAllow, "")
			return err
		},
		"import": func(w auth.Identity) error {
			_, err := s.Import(ctx, w, "email_or_domain,preference\nb@x.com,DO_NOT_ALLOW\n")
			return err
		},
		"forget": func(w auth.Identity) error { _, err := s.ForgetRecipient(ctx, w, "a@x.com"); return err },
	}
	for name, op := range ops {
		t.Run(name, func(t *testing.T) {
			if err := op(rep); !errors.Is(err, auth.ErrForbidden) {
				t.Fatalf("err = %v, want ErrForbidden", err)
			}
		})
	}
	st, _ := s.Settings(ctx, rep)
	v, _ := s.Verdict(ctx, []string{"a@x.com", "b@x.com"})
	page, err := s.AuditLog(ctx, admin, 0, "")
	if err != nil || st != consent.DefaultSettings() || len(v.Blocked) != 0 || len(page.Entries) != 0 {
		t.Fatalf("a refused call changed something: %+v %+v %+v %v", st, v, page, err)
	}
}

func TestImportIsAllOrNothingAndAudited(t *testing.T) {
	ctx := context.Background()
	s, _, _ := newService(t)
	if _, err := s.Import(ctx, admin, "email_or_domain,preference\na@x.com,DO_NOT_ALLOW\nbad line,ALLOW\n"); !errors.Is(err, followed.ErrBadInput) {
		t.Fatalf("err = %v", err)
	}
	if v, _ := s.Verdict(ctx, []string{"a@x.com"}); len(v.Blocked) != 0 {
		t.Fatal("the valid row of a rejected file was applied")
	}
	n, err := s.Import(ctx, admin, "email_or_domain,preference\na@x.com,DO_NOT_ALLOW\na@x.com,ALLOW\nx.com,DO_NOT_ALLOW\n")
	if err != nil || n != 3 {
		t.Fatalf("import: %d %v", n, err)
	}
	page, _ := s.AuditLog(ctx, admin, 0, "")
	var got []string
	for _, a := range page.Entries {
		got = append(got, a.Actor+" "+a.Action+" "+a.Target+" "+a.Before+">"+a.After)
	}
	want := []string{"admin@contoso.com preference.import x.com >DO_NOT_ALLOW",
		"admin@contoso.com preference.import a@x.com DO_NOT_ALLOW>ALLOW",
		"admin@contoso.com preference.import a@x.com >DO_NOT_ALLOW"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("audit\n got %q\nwant %q", got, want)
	}
	// Ann's own ALLOW outranks her domain's DO_NOT_ALLOW.
	if v, _ := s.Verdict(ctx, []string{"a@x.com", "b@x.com"}); len(v.Blocked) != 1 || v.Blocked[0].Email != "b@x.com" {
		t.Fatalf("verdict %+v", v)
	}
}

func TestRetentionPurge(t *testing.T) {
	ctx := context.Background()
	s, db, now := newService(t)
	m := followed.Message{ID: "m", Owner: "rep@contoso.com", Subject: "s", HTML: "h", Following: true, CreatedAt: t0,
		Recipients: []followed.Recipient{{Email: "a@x.com", Kind: followed.KindTo}}}
	if err := db.CreateMessage(ctx, m); err != nil {
		t.Fatal(err)
	}
	var evs []followed.Event
	for i := range 1200 { // more than one purge batch
		evs = append(evs, followed.Event{ID: followed.NewID(t0) + string(rune('a'+i%26)), MessageID: "m", Kind: followed.Opened,
			At: t0.Add(time.Duration(i) * time.Minute), Recipient: followed.Shared, Link: -1})
	}
	if _, err := db.RecordEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Purge(ctx); err != nil || n != 0 {
		t.Fatalf("purge with no retention: %d %v", n, err)
	}
	days := 1
	if _, err := s.UpdateSettings(ctx, admin, consent.SettingsChange{RetentionDays: &days}); err != nil {
		t.Fatal(err)
	}
	*now = t0.Add(24*time.Hour + 1000*time.Minute) // events before minute 1000 are over a day old
	n, err := s.Purge(ctx)
	if err != nil || n != 1000 {
		t.Fatalf("purged %d (%v), want 1000", n, err)
	}
	left, _ := db.Events(ctx, followed.EventQuery{MessageID: "m", Limit: 1000})
	got, _ := db.Message(ctx, "m")
	if len(left) != 200 || got.Counters.Opens != 1200 {
		t.Fatalf("%d events left, counters %+v", len(left), got.Counters)
	}

	// The loop stops when its context ends.
	loopCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { s.Run(loopCtx, time.Millisecond); close(done) }()
	cancel()
	<-done
}

func TestBadSettingsRejected(t *testing.T) {
	ctx := context.Background()
	s, _, _ := newService(t)
	neg, huge := -1, consent.MaxRetentionDays+1
	bogusIP, bogusShare := followed.IPStorage("HALF"), consent.AttachmentSharing("FRIENDS")
	for name, c := range map[string]consent.SettingsChange{
		"negative retention": {RetentionDays: &neg}, "huge retention": {RetentionDays: &huge},
		"ip storage": {IPStorage: &bogusIP}, "sharing": {AttachmentSharing: &bogusShare},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := s.UpdateSettings(ctx, admin, c); !errors.Is(err, followed.ErrBadInput) {
				t.Fatalf("err = %v, want bad input", err)
			}
		})
	}
	if st, _ := s.Settings(ctx, rep); st != consent.DefaultSettings() {
		t.Fatalf("settings changed: %+v", st)
	}
}

// TestErasureKeepsTheLatestChoice: Carl objects and is erased (his objection kept as a hash); he later
// allows being followed, and is erased again. His last choice stands: the hash of the first erasure
// must not bring the objection back.
func TestErasureKeepsTheLatestChoice(t *testing.T) {
	ctx := context.Background()
	s, _, now := newService(t)
	const carl = "carl@fabrikam.com"
	blocked := func() bool {
		t.Helper()
		v, err := s.Verdict(ctx, []string{carl})
		if err != nil {
			t.Fatal(err)
		}
		return len(v.Blocked) != 0
	}
	steps := []struct {
		name    string
		do      func() error
		blocked bool
	}{
		{"objects", func() error { _, err := s.SetPreference(ctx, admin, carl, consent.DoNotAllow, ""); return err }, true},
		{"erased", func() error { _, err := s.ForgetRecipient(ctx, admin, carl); return err }, true},
		{"allows", func() error { _, err := s.SetPreference(ctx, admin, carl, consent.Allow, ""); return err }, false},
		{"erased again", func() error { _, err := s.ForgetRecipient(ctx, admin, carl); return err }, false},
		{"objects again", func() error { _, err := s.SetPreference(ctx, admin, carl, consent.DoNotAllow, ""); return err }, true},
		{"erased a third time", func() error { _, err := s.ForgetRecipient(ctx, admin, carl); return err }, true},
	}
	for _, st := range steps {
		*now = now.Add(time.Minute)
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := blocked(); got != st.blocked {
			t.Fatalf("after he %s: blocked %v, want %v", st.name, got, st.blocked)
		}
	}
}
