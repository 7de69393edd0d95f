package storetest

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/engage-email/engage/consent"
	"github.com/engage-email/engage/followed"
)

// runWithdrawnConsent: a DO_NOT_ALLOW set after mail was sent stops recording the events of that mail
// for its target (an address whatever its case, or a domain), per recipient of an individual render
// and for everyone on a shared one; other recipients and other mail are kept; a later ALLOW does not
// resume it.
func runWithdrawnConsent(t *testing.T, open func(t *testing.T) Stores) {
	ctx := context.Background()
	sec := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }
	// ind: individual to ann (0) and bob (1); shr: shared to ann and cy; other: to dee alone. Addresses
	// are stored as followMessage normalises them, in lower case.
	seed := func(t *testing.T) Stores {
		st := open(t)
		mustCreate(t, st.Followed, message("ind", "rep@contoso.com", "Ind", t0, true, "ann@fabrikam.com", "bob@y.com"),
			message("shr", "rep@contoso.com", "Shr", t0, false, "ann@fabrikam.com", "cy@z.com"),
			message("other", "rep@contoso.com", "Other", t0, true, "dee@northwind.example"))
		return st
	}
	hits := func(tag string) []followed.Event {
		return []followed.Event{event(tag+"-ann", "ind", followed.Opened, sec(1), 0, -1), event(tag+"-bob", "ind", followed.Opened, sec(2), 1, -1),
			event(tag+"-shr", "shr", followed.Opened, sec(3), followed.Shared, -1), event(tag+"-dee", "other", followed.Opened, sec(4), 0, -1)}
	}
	stored := func(t *testing.T, st Stores) []string {
		t.Helper()
		var ids []string
		for _, m := range []string{"ind", "shr", "other"} {
			evs, err := st.Followed.Events(ctx, followed.EventQuery{MessageID: m, Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range evs {
				ids = append(ids, e.ID)
			}
		}
		sort.Strings(ids)
		return ids
	}
	t.Run("her reply and opt-out are still kept", func(t *testing.T) {
		st := seed(t)
		if err := st.Consent.AddPreferences(ctx, []consent.Entry{pref("ann@fabrikam.com", consent.DoNotAllow, sec(10))}, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Followed.RecordEvents(ctx, []followed.Event{event("r", "ind", followed.Replied, sec(11), 0, -1),
			event("u", "ind", followed.Unsubscribed, sec(12), 0, -1), event("o", "ind", followed.Opened, sec(13), 0, -1)}); err != nil {
			t.Fatal(err)
		}
		if got := stored(t, st); fmt.Sprint(got) != "[r u]" {
			t.Fatalf("stored %v, want the reply and the opt-out, not the open", got)
		}
	})

	t.Run("an erased recipient is not tracked again", func(t *testing.T) {
		st := seed(t)
		if st.FollowedEraser == nil {
			t.Skip("this backend has no eraser")
		}
		if _, err := st.Followed.RecordEvents(ctx, hits("a")); err != nil {
			t.Fatal(err)
		}
		if _, err := st.FollowedEraser.ForgetRecipient(ctx, "ann@fabrikam.com"); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Followed.RecordEvents(ctx, hits("b")); err != nil {
			t.Fatal(err)
		}
		// Ann's events of her own render go with her and do not come back; the shared render, sent to
		// cy as well, cannot tell her opens from cy's and stays tracked.
		want := []string{"a-bob", "a-dee", "a-shr", "b-bob", "b-dee", "b-shr"}
		if got := stored(t, st); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("stored %v\n  want %v", got, want)
		}
	})
	for _, tc := range []struct {
		name  string
		prefs []consent.Entry
		want  []string // of the second round of hits, the ids kept (the first round, before, is always kept)
	}{
		{"nothing withdrawn", nil, []string{"b-ann", "b-bob", "b-dee", "b-shr"}},
		{"an address, in another case", []consent.Entry{pref("Ann@Fabrikam.com", consent.DoNotAllow, sec(10))},
			[]string{"b-bob", "b-dee"}},
		{"a domain", []consent.Entry{pref("northwind.example", consent.DoNotAllow, sec(10))},
			[]string{"b-ann", "b-bob", "b-shr"}},
		{"an ALLOW changes nothing", []consent.Entry{pref("bob@y.com", consent.Allow, sec(10))},
			[]string{"b-ann", "b-bob", "b-dee", "b-shr"}},
		{"withdrawn, then allowed again: mail already sent stays untracked", []consent.Entry{
			pref("bob@y.com", consent.DoNotAllow, sec(10)), pref("bob@y.com", consent.Allow, sec(11))},
			[]string{"b-ann", "b-dee", "b-shr"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := seed(t)
			if _, err := st.Followed.RecordEvents(ctx, hits("a")); err != nil {
				t.Fatal(err)
			}
			if len(tc.prefs) > 0 {
				if err := st.Consent.AddPreferences(ctx, tc.prefs, nil); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := st.Followed.RecordEvents(ctx, hits("b")); err != nil {
				t.Fatal(err)
			}
			want := append([]string{"a-ann", "a-bob", "a-dee", "a-shr"}, tc.want...)
			sort.Strings(want)
			if got := stored(t, st); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("stored %v\n  want %v", got, want)
			}
		})
	}
}
