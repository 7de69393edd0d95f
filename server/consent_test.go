package server_test

import (
	"bytes"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

const adminUser, repA, repB = "admin@contoso.com", "rep@contoso.com", "other@contoso.com"

func (e *engage) mustGQL(t *testing.T, user, query string, vars map[string]any, out any) {
	t.Helper()
	if r := e.gql(t, user, query, vars, out); len(r.Errors) > 0 {
		t.Fatalf("%s: %+v", query, r.Errors)
	}
}

func (e *engage) setPreference(t *testing.T, target, pref string) {
	t.Helper()
	e.mustGQL(t, adminUser, `mutation($t: String!, $p: FollowPreference!) { setFollowPreference(target: $t, preference: $p) { target } }`,
		map[string]any{"t": target, "p": pref}, nil)
}

func (e *engage) follow(t *testing.T, user string, individual bool, html string, emails ...string) followedOut {
	t.Helper()
	var rcpts []map[string]any
	for _, em := range emails {
		rcpts = append(rcpts, map[string]any{"email": em})
	}
	var out followedOut
	e.mustGQL(t, user, followMutation, map[string]any{"in": map[string]any{"subject": "Offer", "html": html,
		"individual": individual, "recipients": rcpts}}, &out)
	return out
}

const offerHTML = `<p>Hi, see <a href="https://contoso.example/offer">the offer</a> and
<a href="https://contoso.example/files/brochure.pdf">the brochure</a>.</p>`

// untracked fails unless html carries no pixel, no redirect and no tracked attachment link.
func untracked(t *testing.T, html string) {
	t.Helper()
	for _, p := range []string{"/t/o/", "/t/c/", "/t/a/", "/t/h/"} {
		if strings.Contains(html, p) {
			t.Fatalf("render carries %s: %s", p, html)
		}
	}
	if !strings.Contains(html, `href="https://contoso.example/offer"`) {
		t.Fatalf("render lost its direct link: %s", html)
	}
}

func TestDoNotAllowRecipientIsNotTracked(t *testing.T) {
	e := start(t)
	e.setPreference(t, "ann@fabrikam.com", "DO_NOT_ALLOW")
	e.setPreference(t, "northwind.example", "DO_NOT_ALLOW")

	var f struct {
		Followability struct {
			Allowed []string
			Blocked []struct{ Email, Reason string }
		}
	}
	e.mustGQL(t, repA, `{ followability(recipients: ["Ann@Fabrikam.com", "bob@fabrikam.com", "cy@northwind.example"]) { allowed blocked { email reason } } }`, nil, &f)
	if fmt.Sprint(f.Followability) != "{[bob@fabrikam.com] [{ann@fabrikam.com DO_NOT_ALLOW} {cy@northwind.example DOMAIN_DO_NOT_ALLOW}]}" {
		t.Fatalf("followability %+v", f.Followability)
	}

	shared := e.follow(t, repA, false, offerHTML, "ann@fabrikam.com", "bob@fabrikam.com").FollowMessage
	if shared.Following || shared.NotFollowedReason == nil || !strings.Contains(*shared.NotFollowedReason, "ann@fabrikam.com (DO_NOT_ALLOW)") ||
		len(shared.Renders) != 1 || shared.Renders[0].Tracked || len(shared.Links) != 0 {
		t.Fatalf("shared message to a DO_NOT_ALLOW recipient: %+v", shared)
	}
	untracked(t, shared.Renders[0].HTML)

	indiv := e.follow(t, repA, true, offerHTML, "ann@fabrikam.com", "bob@fabrikam.com").FollowMessage
	if !indiv.Following || len(indiv.Renders) != 2 || indiv.Renders[0].Tracked || !indiv.Renders[1].Tracked || len(indiv.Links) != 2 {
		t.Fatalf("individual message: %+v", indiv)
	}
	untracked(t, indiv.Renders[0].HTML)
	if !pixelRe.MatchString(indiv.Renders[1].HTML) || len(hrefRe.FindAllString(indiv.Renders[1].HTML, -1)) != 2 {
		t.Fatalf("bob's render is not tracked: %s", indiv.Renders[1].HTML)
	}

	// The admin changes their mind; the sender asks again and gets tracked renders.
	e.setPreference(t, "ann@fabrikam.com", "ALLOW")
	const retry = `mutation($id: ID!) { retryFollow(id: $id) { following notFollowedReason renders { html tracked } } }`
	if r := e.gql(t, repB, retry, map[string]any{"id": shared.ID}, nil); r.code() != "NOT_FOUND" {
		t.Fatalf("another rep's retry: %+v", r.Errors)
	}
	var again struct {
		RetryFollow struct {
			Following         bool
			NotFollowedReason *string
			Renders           []struct {
				HTML    string
				Tracked bool
			}
		}
	}
	e.mustGQL(t, repA, retry, map[string]any{"id": shared.ID}, &again)
	if !again.RetryFollow.Following || again.RetryFollow.NotFollowedReason != nil || !again.RetryFollow.Renders[0].Tracked ||
		!pixelRe.MatchString(again.RetryFollow.Renders[0].HTML) {
		t.Fatalf("after retry: %+v", again.RetryFollow)
	}

	// Mail sent untracked stays unfollowed: its recipients have it without a pixel or tracked links.
	blocked := e.follow(t, repA, false, offerHTML, "cy@northwind.example").FollowMessage
	var sent struct{ SendMessage sendOut }
	e.mustGQL(t, repA, `mutation($id: ID!) { sendMessage(id: $id) { `+sendFields+` } }`, map[string]any{"id": blocked.ID}, &sent)
	if sent.SendMessage.Status != "SENT" {
		t.Fatalf("send: %+v", sent.SendMessage)
	}
	e.setPreference(t, "northwind.example", "ALLOW")
	if r := e.gql(t, repA, retry, map[string]any{"id": blocked.ID}, nil); r.code() != "BAD_USER_INPUT" ||
		!strings.Contains(r.Errors[0].Message, "cannot be followed now") {
		t.Fatalf("retry after sending: %+v", r.Errors)
	}
	var still struct{ Message struct{ Following bool } }
	e.mustGQL(t, repA, `query($id: ID!) { message(id: $id) { following } }`, map[string]any{"id": blocked.ID}, &still)
	if still.Message.Following {
		t.Fatal("a message sent untracked became followed")
	}
}

func TestSettingsSwitchSignalsAndEngagement(t *testing.T) {
	e := start(t)
	const update = `mutation($in: EngagementSettingsInput!) { updateEngagementSettings(input: $in) { enabled trackOpens trackLinks ipStorage } }`
	e.mustGQL(t, adminUser, update, map[string]any{"in": map[string]any{"trackLinks": false, "ipStorage": "NONE"}}, nil)
	m := e.follow(t, repA, false, offerHTML, "dan@fabrikam.com").FollowMessage
	if !m.Following || !pixelRe.MatchString(m.Renders[0].HTML) || hrefRe.MatchString(m.Renders[0].HTML) ||
		strings.Contains(m.Renders[0].HTML, "/t/h/") {
		t.Fatalf("links off: %+v (no tracked link, the honeypot neither)", m)
	}
	res := get(t, "GET", pixelRe.FindStringSubmatch(m.Renders[0].HTML)[1], outlookUA)
	res.Body.Close()
	var ev struct {
		Message struct {
			Interactions struct {
				Edges []struct{ Node struct{ IPAddress *string } }
			}
		}
	}
	e.mustGQL(t, repA, `query($id: ID!) { message(id: $id) { interactions { edges { node { ipAddress } } } } }`, map[string]any{"id": m.ID}, &ev)
	if len(ev.Message.Interactions.Edges) != 1 || ev.Message.Interactions.Edges[0].Node.IPAddress != nil {
		t.Fatalf("IP storage NONE kept an address: %+v", ev)
	}

	e.mustGQL(t, adminUser, update, map[string]any{"in": map[string]any{"enabled": false}}, nil)
	off := e.follow(t, repA, true, offerHTML, "dan@fabrikam.com").FollowMessage
	if off.Following || !strings.Contains(*off.NotFollowedReason, "ENGAGEMENT_DISABLED") {
		t.Fatalf("engagement off: %+v", off)
	}
	untracked(t, off.Renders[0].HTML)
}

// TestConsentWithdrawnAfterSendingStopsTracking: Ann opens, then tells the company not to follow her;
// her later opens of the mail already sent still get the image but are not recorded, while Bob's are.
func TestConsentWithdrawnAfterSendingStopsTracking(t *testing.T) {
	e := start(t)
	m := e.follow(t, repA, true, offerHTML, "ann@fabrikam.com", "bob@fabrikam.com").FollowMessage
	ann, bob := pixelRe.FindStringSubmatch(m.Renders[0].HTML)[1], pixelRe.FindStringSubmatch(m.Renders[1].HTML)[1]
	open := func(pixel string) {
		t.Helper()
		res := get(t, "GET", pixel, outlookUA)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "image/gif" {
			t.Fatalf("pixel answered %d %s", res.StatusCode, res.Header.Get("Content-Type"))
		}
	}
	kpis := func() string {
		t.Helper()
		var out struct {
			Message struct {
				Kpis struct{ Opens, UniqueOpens int }
			}
		}
		e.mustGQL(t, repA, `query($id: ID!) { message(id: $id) { kpis { opens uniqueOpens } } }`, map[string]any{"id": m.ID}, &out)
		return fmt.Sprintf("%d opens, %d unique", out.Message.Kpis.Opens, out.Message.Kpis.UniqueOpens)
	}
	open(ann)
	e.setPreference(t, "Ann@Fabrikam.com", "DO_NOT_ALLOW")
	open(ann)
	if got := kpis(); got != "1 opens, 1 unique" {
		t.Fatalf("after Ann withdrew: %s, want her first open only", got)
	}
	open(bob)
	if got := kpis(); got != "2 opens, 2 unique" {
		t.Fatalf("after Bob's open: %s", got)
	}
}

// TestSignalsSwitchedOffAfterSendingAreNotKept: a message sent while opens and links were tracked keeps
// its pixel and links; once an admin switches a signal (or engagement) off, its hits are still answered
// (the image, the redirect) but no longer recorded, and switching it back on records them again.
func TestSignalsSwitchedOffAfterSendingAreNotKept(t *testing.T) {
	e := start(t)
	const update = `mutation($in: EngagementSettingsInput!) { updateEngagementSettings(input: $in) { enabled } }`
	m := e.follow(t, repA, false, offerHTML, "dan@fabrikam.com").FollowMessage
	pixel, link := pixelRe.FindStringSubmatch(m.Renders[0].HTML)[1], hrefRe.FindStringSubmatch(m.Renders[0].HTML)[1]
	opens := func() (int, int) {
		t.Helper()
		var out struct {
			Message struct{ Kpis struct{ Opens, Clicks int } }
		}
		e.mustGQL(t, repA, `query($id: ID!) { message(id: $id) { kpis { opens clicks } } }`, map[string]any{"id": m.ID}, &out)
		return out.Message.Kpis.Opens, out.Message.Kpis.Clicks
	}
	hits := func(t *testing.T) {
		t.Helper()
		res := get(t, "GET", pixel, outlookUA)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "image/gif" {
			t.Fatalf("pixel answered %d %s", res.StatusCode, res.Header.Get("Content-Type"))
		}
		res = get(t, "GET", link, outlookUA)
		res.Body.Close()
		if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "https://contoso.example/offer" {
			t.Fatalf("link answered %d to %q", res.StatusCode, res.Header.Get("Location"))
		}
	}
	for _, tc := range []struct {
		name          string
		settings      map[string]any
		opens, clicks int // the counts after this step's hits
	}{
		{"both tracked", map[string]any{"enabled": true, "trackOpens": true, "trackLinks": true}, 1, 1},
		{"opens off", map[string]any{"trackOpens": false}, 1, 2},
		{"links off too", map[string]any{"trackLinks": false}, 1, 2},
		{"both on, engagement off", map[string]any{"enabled": false, "trackOpens": true, "trackLinks": true}, 1, 2},
		{"engagement on again", map[string]any{"enabled": true}, 2, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.mustGQL(t, adminUser, update, map[string]any{"in": tc.settings}, nil)
			hits(t)
			if o, c := opens(); o != tc.opens || c != tc.clicks {
				t.Fatalf("opens %d clicks %d, want %d and %d", o, c, tc.opens, tc.clicks)
			}
		})
	}
}

func TestNonAdminChangesNothingAndCSVIsAllOrNothing(t *testing.T) {
	e := start(t)
	const imp = `mutation($csv: String!) { importFollowPreferences(csv: $csv) { imported } }`
	csv := "email_or_domain,preference\nann@fabrikam.com,DO_NOT_ALLOW\n"
	if r := e.gql(t, repA, imp, map[string]any{"csv": csv}, nil); r.code() != "FORBIDDEN" || r.status != 200 {
		t.Fatalf("rep import: %d %+v", r.status, r.Errors)
	}
	bad := csv + "not-an-address,ALLOW\nbob@fabrikam.com,PERHAPS\n"
	r := e.gql(t, adminUser, imp, map[string]any{"csv": bad}, nil)
	if r.code() != "BAD_USER_INPUT" || !strings.Contains(r.Errors[0].Message, "line 3:") || !strings.Contains(r.Errors[0].Message, "line 4:") {
		t.Fatalf("malformed import: %+v", r.Errors)
	}
	var f struct{ Followability struct{ Allowed []string } }
	e.mustGQL(t, repA, `{ followability(recipients: ["ann@fabrikam.com"]) { allowed } }`, nil, &f)
	if len(f.Followability.Allowed) != 1 {
		t.Fatalf("a refused import was applied: %+v", f)
	}
	var log struct {
		AuditLog struct {
			Edges []struct{ Node struct{ Action string } }
		}
	}
	e.mustGQL(t, adminUser, `{ auditLog { edges { node { action } } } }`, nil, &log)
	if len(log.AuditLog.Edges) != 0 {
		t.Fatalf("refused calls were audited: %+v", log)
	}
	var ok struct{ ImportFollowPreferences struct{ Imported int } }
	e.mustGQL(t, adminUser, imp, map[string]any{"csv": csv + "contoso.example,ALLOW\n"}, &ok)
	e.mustGQL(t, adminUser, `{ auditLog { edges { node { action } } } }`, nil, &log)
	if ok.ImportFollowPreferences.Imported != 2 || len(log.AuditLog.Edges) != 2 {
		t.Fatalf("import %+v, audit %+v", ok, log)
	}
}

func TestForgetRecipientLeavesNoTraceInTheStore(t *testing.T) {
	e := start(t)
	const ann = "ann@fabrikam.com"
	e.setPreference(t, ann, "ALLOW")
	m := e.follow(t, repA, true, "<p>Dear "+strings.ToUpper(ann)+`,</p><a href="https://contoso.example/?who=`+ann+`">yours</a>`,
		ann, "bob@fabrikam.com").FollowMessage
	for _, r := range m.Renders {
		res := get(t, "GET", pixelRe.FindStringSubmatch(r.HTML)[1], outlookUA)
		res.Body.Close()
	}
	// A subject naming her, copied into a reminder for the alert it will fire.
	var titled followedOut
	e.mustGQL(t, repA, followMutation, map[string]any{"in": map[string]any{"subject": "Proposal for " + ann, "html": "<p>x</p>",
		"recipients": []map[string]any{{"email": ann}}}}, &titled)
	e.mustGQL(t, repA, `mutation($id: ID!, $at: Time!) { setReminder(messageId: $id, kind: ANYWAY, at: $at) { id } }`,
		map[string]any{"id": titled.FollowMessage.ID, "at": time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)}, nil)
	// Sent through the local outbox first, so delivery's tables hold the address too.
	var sent struct{ SendMessage sendOut }
	e.mustGQL(t, repA, `mutation($id: ID!) { sendMessage(id: $id) { `+sendFields+` } }`, map[string]any{"id": m.ID}, &sent)
	if sent.SendMessage.Status != "SENT" {
		t.Fatalf("send before erasure: %+v", sent.SendMessage)
	}
	var data struct {
		RecipientData struct {
			Records []struct{ Source, Kind string }
		}
	}
	e.mustGQL(t, adminUser, `query($e: String!) { recipientData(email: $e) { records { source kind } } }`, map[string]any{"e": ann}, &data)
	kinds := fmt.Sprint(data.RecipientData.Records)
	for _, want := range []string{"{followed recipient}", "{followed event}", "{consent preference}", "{consent audit}", "{delivery outbox}"} {
		if !strings.Contains(kinds, want) {
			t.Fatalf("recipient data %s lacks %s", kinds, want)
		}
	}
	if r := e.gql(t, repA, `mutation { forgetRecipient(email: "ann@fabrikam.com") { email } }`, nil, nil); r.code() != "FORBIDDEN" {
		t.Fatalf("rep forget: %+v", r.Errors)
	}
	var erased struct {
		ForgetRecipient struct {
			Counts []struct {
				What  string
				Count int
			}
		}
	}
	e.mustGQL(t, adminUser, `mutation { forgetRecipient(email: "Ann@Fabrikam.com") { counts { what count } } }`, nil, &erased)
	counts := fmt.Sprint(erased.ForgetRecipient.Counts)
	for _, want := range []string{"{recipients 2}", "{events 1}", "{preferences 1}", "{outbox 1}"} {
		if !strings.Contains(counts, want) {
			t.Fatalf("counts %s lack %s", counts, want)
		}
	}

	// A direct look: every text cell of every table, then the raw bytes of the files.
	raw, err := sql.Open("sqlite", "file:"+e.DB.Path()+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	tables, err := raw.Query("SELECT name FROM sqlite_master WHERE type = 'table'")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for tables.Next() {
		var n string
		tables.Scan(&n)
		names = append(names, n)
	}
	tables.Close()
	for _, table := range names {
		rows, err := raw.Query("SELECT * FROM " + table)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			rows.Scan(ptrs...)
			if cell := strings.ToLower(fmt.Sprint(vals...)); strings.Contains(cell, ann) {
				t.Errorf("table %s still holds the address: %v", table, vals)
			}
		}
		rows.Close()
	}
	for _, path := range []string{e.DB.Path(), e.DB.Path() + "-wal"} {
		b, err := os.ReadFile(path)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if bytes.Contains(bytes.ToLower(b), []byte(ann)) {
			t.Errorf("%s still holds the address's bytes", path[strings.LastIndex(path, "/")+1:])
		}
	}
	// The message and Bob's side of it stay.
	var after followedOut
	e.mustGQL(t, repA, `query($id: ID!) { followMessage: message(id: $id) { id recipients { email } } }`, map[string]any{"id": m.ID}, &after)
	if len(after.FollowMessage.Recipients) != 2 || after.FollowMessage.Recipients[1].Email != "bob@fabrikam.com" {
		t.Fatalf("after forget: %+v", after.FollowMessage)
	}
	var box outboxOut
	e.mustGQL(t, repA, `{ outbox { to html } }`, nil, &box)
	var to []string
	for _, o := range box.Outbox {
		to = append(to, strings.Join(o.To, ","))
		if strings.Join(o.To, ",") == "bob@fabrikam.com" && !strings.Contains(o.HTML, "Dear [erased],") {
			t.Errorf("bob's mail kept its body without the address? %s", o.HTML)
		}
	}
	slices.Sort(to)
	if fmt.Sprint(to) != "[bob@fabrikam.com erased-0@erased.invalid]" {
		t.Fatalf("outbox after forget is addressed to %v", to)
	}
}
