package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/recommend"
)

const sendTimeQuery = `query($to: [String!]!, $after: Time, $count: Int) {
	sendTimeRecommendation(recipients: $to, after: $after, count: $count) { at score explanation exploring } }`

type slotsOut struct {
	SendTimeRecommendation []struct {
		At          time.Time
		Score       float64
		Explanation string
		Exploring   bool
	}
}

// history stores weeks of weekday mail to addr sent at sendHour and first opened by a person at
// readHour (local), with a privacy proxy's machine open at delivery that must not count.
func history(t *testing.T, db followed.Store, addr string, zone *time.Location, weeks, sendHour, readHour int) {
	t.Helper()
	ctx := context.Background()
	monday := time.Date(2025, time.January, 6, 0, 0, 0, 0, zone)
	var evs []followed.Event
	for w := range weeks {
		for d := range 5 {
			day := monday.AddDate(0, 0, 7*w+d)
			sent := day.Add(time.Duration(sendHour)*time.Hour + 5*time.Minute)
			read := day.Add(time.Duration(readHour)*time.Hour + 20*time.Minute)
			id := fmt.Sprintf("h-%s-%d-%d", addr, w, d)
			m := followed.Message{ID: id, Owner: "rep@contoso.com", Subject: "S", HTML: "<p>S</p>", Individual: true,
				Following: true, CreatedAt: sent.UTC(), Warnings: []string{},
				Recipients: []followed.Recipient{{Email: addr, Kind: followed.KindTo}},
				Renders:    []followed.Render{{Index: 0, Recipient: 0, Targets: []int{0}, HTML: "x", Tracked: true}}}
			if err := db.CreateMessage(ctx, m); err != nil {
				t.Fatal(err)
			}
			evs = append(evs,
				followed.Event{ID: id + "-m", MessageID: id, Kind: followed.Opened, At: sent.Add(time.Minute).UTC(), Link: -1, Machine: true, Reason: "PROXY"},
				followed.Event{ID: id + "-h", MessageID: id, Kind: followed.Opened, At: read.UTC(), Link: -1})
		}
	}
	if _, err := db.RecordEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
}

func TestSendTimeRecommendation(t *testing.T) {
	e := start(t)
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.DB.SaveProfile(context.Background(), recommend.Profile{Recipient: "eve@fabrikam.example", Location: berlin,
		Source: recommend.SourceMailbox}, time.Now()); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		history(t, e.DB, fmt.Sprintf("c%d@northwind.example", i), berlin, 4, 14, 9)
	}
	history(t, e.DB, "eve@fabrikam.example", berlin, 6, 10, 20)
	after := time.Date(2025, 3, 4, 11, 0, 0, 0, berlin)
	many := make([]string, recommend.MaxRecipients+1)
	for i := range many {
		many[i] = fmt.Sprintf("r%d@x.example", i)
	}
	tests := []struct {
		name   string
		user   string
		vars   map[string]any
		code   string
		slots  int
		hours  []int  // acceptable Berlin hours of the best slot
		phrase string // in the best slot's explanation
	}{
		{"learned evening reader", "rep@contoso.com", map[string]any{"to": []string{"Eve@Fabrikam.example"}, "after": after, "count": 2},
			"", 2, []int{19, 20}, "from 30 engagements"},
		{"unknown recipient is a cold start", "rep@contoso.com", map[string]any{"to": []string{"new@nowhere.example"}, "after": after},
			"", recommend.DefaultCount, nil, "nowhere.example"},
		{"empty list", "rep@contoso.com", map[string]any{"to": []string{}}, "BAD_USER_INPUT", 0, nil, "no recipients"},
		{"too many recipients", "rep@contoso.com", map[string]any{"to": many}, "BAD_USER_INPUT", 0, nil, "recipients, at most"},
		{"count above 24", "rep@contoso.com", map[string]any{"to": []string{"a@x.example"}, "count": 25}, "BAD_USER_INPUT", 0, nil, "count 25 is outside 1-24"},
		{"not an address", "rep@contoso.com", map[string]any{"to": []string{"nobody"}}, "BAD_USER_INPUT", 0, nil, "is not an email address"},
		{"years ahead", "rep@contoso.com", map[string]any{"to": []string{"a@x.example"}, "after": "9999-12-31T23:00:00Z"}, "BAD_USER_INPUT", 0, nil,
			"9999-12-31T23:00:00Z is more than a year ahead"},
		{"in year 1", "rep@contoso.com", map[string]any{"to": []string{"a@x.example"}, "after": "0001-01-01T00:00:01Z"}, "BAD_USER_INPUT", 0, nil,
			"is before the year 2000"},
		{"anonymous", "", map[string]any{"to": []string{"a@x.example"}}, "UNAUTHENTICATED", 0, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out slotsOut
			r := e.gql(t, tc.user, sendTimeQuery, tc.vars, &out)
			if r.code() != tc.code {
				t.Fatalf("code = %q (%v), want %q", r.code(), r.Errors, tc.code)
			}
			if tc.code != "" {
				// The caller's words alone: no query position, field name or sentinel around them.
				if msg := r.Errors[0].Message; r.status != 200 || !strings.Contains(msg, tc.phrase) || strings.Contains(msg, "input:") ||
					strings.Contains(msg, "bad input") {
					t.Errorf("status %d, message %q: want 200 and a clear message mentioning %q", r.status, msg, tc.phrase)
				}
				return
			}
			slots := out.SendTimeRecommendation
			if len(slots) != tc.slots {
				t.Fatalf("got %d slots, want %d", len(slots), tc.slots)
			}
			best := slots[0]
			if tc.hours != nil {
				ok := false
				for _, h := range tc.hours {
					ok = ok || best.At.In(berlin).Hour() == h
				}
				if !ok {
					t.Errorf("best slot %s, want Berlin hour in %v: %s", best.At.In(berlin), tc.hours, best.Explanation)
				}
			}
			if !strings.Contains(best.Explanation, tc.phrase) || best.Exploring || best.At.Before(after) {
				t.Errorf("best slot %s exploring %v: %q, want it after %s mentioning %q", best.At, best.Exploring, best.Explanation, after, tc.phrase)
			}
		})
	}
}

const templateFields = `id owner name subject html category createdAt updatedAt`

type templateOut struct {
	ID, Owner, Name, Subject, HTML, Category string
}

func TestTemplatesAndOutcomes(t *testing.T) {
	e := start(t)
	const rep, other, admin = "rep@contoso.com", "other@contoso.com", "admin@contoso.com"
	create := func(t *testing.T, user, name, category string) (templateOut, gqlResponse) {
		var out struct{ CreateTemplate templateOut }
		r := e.gql(t, user, `mutation($in: TemplateInput!) { createTemplate(input: $in) { `+templateFields+` } }`,
			map[string]any{"in": map[string]any{"name": name, "subject": "Hello", "html": "<p>Hi</p>", "category": category}}, &out)
		return out.CreateTemplate, r
	}
	intro, r := create(t, rep, " Intro ", "intro")
	if r.code() != "" || intro.ID == "" || intro.Owner != rep || intro.Name != "Intro" {
		t.Fatalf("create: %+v %v", intro, r.Errors)
	}
	if _, r := create(t, rep, "", "intro"); r.code() != "BAD_USER_INPUT" || r.Errors[0].Message != "the template's name is empty" {
		t.Errorf("empty name: %v, want BAD_USER_INPUT naming the field, and nothing else", r.Errors)
	}
	if _, r := create(t, "", "Anon", "intro"); r.code() != "UNAUTHENTICATED" {
		t.Errorf("anonymous create: %v", r.Errors)
	}
	if _, r := create(t, other, "Follow-up", "follow-up"); r.code() != "" {
		t.Fatalf("second create: %v", r.Errors)
	}

	update := `mutation($id: ID!, $in: TemplateInput!) { updateTemplate(id: $id, input: $in) { ` + templateFields + ` } }`
	edits := []struct {
		name, user, id, code string
	}{
		{"another rep may not edit", other, intro.ID, "FORBIDDEN"},
		{"the creator may", rep, intro.ID, ""},
		{"an admin may", admin, intro.ID, ""},
		{"a missing template", rep, "nope", "NOT_FOUND"},
	}
	for _, tc := range edits {
		t.Run("update: "+tc.name, func(t *testing.T) {
			var out struct{ UpdateTemplate templateOut }
			r := e.gql(t, tc.user, update, map[string]any{"id": tc.id,
				"in": map[string]any{"name": "Intro by " + tc.user, "html": "<p>v2</p>", "category": "intro"}}, &out)
			if r.code() != tc.code {
				t.Fatalf("code = %q (%v), want %q", r.code(), r.Errors, tc.code)
			}
			if tc.code == "" && (out.UpdateTemplate.Name != "Intro by "+tc.user || out.UpdateTemplate.Owner != rep) {
				t.Errorf("updated = %+v", out.UpdateTemplate)
			}
		})
	}

	var list struct{ Templates []templateOut }
	if r := e.gql(t, other, `query($c: String) { templates(category: $c) { `+templateFields+` } }`, map[string]any{"c": "intro"}, &list); r.code() != "" ||
		len(list.Templates) != 1 || list.Templates[0].Name != "Intro by "+admin {
		t.Errorf("templates(intro) read by another rep = %+v, %v", list.Templates, r.Errors)
	}

	// Outcomes: only on one's own message; another's answers NOT_FOUND, as followed does.
	var followed followedOut
	if r := e.gql(t, rep, followMutation, map[string]any{"in": map[string]any{"subject": "Offer", "html": "<p>x</p>",
		"recipients": []map[string]any{{"email": "ann@fabrikam.example"}}, "templateId": intro.ID}}, &followed); r.code() != "" {
		t.Fatalf("follow: %v", r.Errors)
	}
	outcomes := []struct {
		name, user, id, outcome, code string
	}{
		{"another rep's message", other, followed.FollowMessage.ID, "WON", "NOT_FOUND"},
		{"an admin is not the owner either", admin, followed.FollowMessage.ID, "WON", "NOT_FOUND"},
		{"a missing message", rep, "nope", "LOST", "NOT_FOUND"},
		{"lost", rep, followed.FollowMessage.ID, "LOST", ""},
		{"then won replaces it", rep, followed.FollowMessage.ID, "WON", ""},
	}
	for _, tc := range outcomes {
		t.Run("outcome: "+tc.name, func(t *testing.T) {
			var out struct{ RecordOutcome string }
			r := e.gql(t, tc.user, `mutation($id: ID!, $o: Outcome!) { recordOutcome(messageId: $id, outcome: $o) }`,
				map[string]any{"id": tc.id, "o": tc.outcome}, &out)
			if r.code() != tc.code || (tc.code == "" && out.RecordOutcome != tc.outcome) {
				t.Errorf("code = %q (%v), outcome %q; want %q", r.code(), r.Errors, out.RecordOutcome, tc.code)
			}
		})
	}

	var recs struct {
		TemplateRecommendations []struct {
			Template templateOut
			Emails   int
			WinRate  struct {
				Mean, Low, High float64
				N               int
			}
			Recommended bool
			Why         string
		}
	}
	if r := e.gql(t, other, `query { templateRecommendations(category: "intro") { template { id name } emails
		winRate { mean low high n } recommended why } }`, nil, &recs); r.code() != "" {
		t.Fatalf("templateRecommendations: %v", r.Errors)
	}
	got := recs.TemplateRecommendations
	if len(got) != 1 || got[0].Template.ID != intro.ID || got[0].Emails != 1 || got[0].WinRate.N != 1 ||
		got[0].Recommended || got[0].WinRate.Low >= got[0].WinRate.Mean || got[0].WinRate.High <= got[0].WinRate.Mean {
		t.Errorf("recommendations = %+v, want the one template with 1 email, 1 outcome and a wide interval, not recommended", got)
	}

	var del struct{ DeleteTemplate bool }
	for _, tc := range []struct{ user, code string }{{other, "FORBIDDEN"}, {rep, ""}, {rep, "NOT_FOUND"}} {
		if r := e.gql(t, tc.user, `mutation($id: ID!) { deleteTemplate(id: $id) }`, map[string]any{"id": intro.ID}, &del); r.code() != tc.code {
			t.Errorf("delete by %s: %q (%v), want %q", tc.user, r.code(), r.Errors, tc.code)
		}
	}
}

func TestTemplateRecommendedWhenConfidentlyBetter(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	ids := map[string]string{}
	for _, name := range []string{"Warm", "Cold"} {
		var out struct{ CreateTemplate templateOut }
		if r := e.gql(t, "rep@contoso.com", `mutation($in: TemplateInput!) { createTemplate(input: $in) { id } }`,
			map[string]any{"in": map[string]any{"name": name, "html": "<p>x</p>", "category": "intro"}}, &out); r.code() != "" {
			t.Fatal(r.Errors)
		}
		ids[name] = out.CreateTemplate.ID
	}
	// 40 emails each: Warm gets 20 real replies, Cold 3 real replies and 17 automatic ones (which never count).
	at := time.Date(2025, 2, 3, 9, 0, 0, 0, time.UTC)
	var evs []followed.Event
	for name, replies := range map[string]int{"Warm": 20, "Cold": 3} {
		for i := range 40 {
			id := fmt.Sprintf("%s-%d", name, i)
			m := followed.Message{ID: id, Owner: "rep@contoso.com", Subject: "S", HTML: "x", Following: true, TemplateID: ids[name],
				CreatedAt: at, Warnings: []string{}, Recipients: []followed.Recipient{{Email: "x@y.example", Kind: followed.KindTo}},
				Renders: []followed.Render{{Index: 0, Recipient: followed.Shared, Targets: []int{0}, HTML: "x", Tracked: true}}}
			if err := e.DB.CreateMessage(ctx, m); err != nil {
				t.Fatal(err)
			}
			kind := followed.AutoReplied
			if i < replies {
				kind = followed.Replied
			}
			if i < 20 {
				evs = append(evs, followed.Event{ID: id + "-r", MessageID: id, Kind: kind, At: at.Add(time.Hour), Recipient: 0, Link: -1})
			}
		}
	}
	if _, err := e.DB.RecordEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	var recs struct {
		TemplateRecommendations []struct {
			Template  struct{ Name string }
			Emails    int
			ReplyRate struct {
				Mean float64
				N    int
			}
			Recommended bool
			Why         string
		}
	}
	if r := e.gql(t, "other@contoso.com", `query { templateRecommendations(category: "intro") { template { name } emails
		replyRate { mean n } recommended why } }`, nil, &recs); r.code() != "" {
		t.Fatal(r.Errors)
	}
	got := recs.TemplateRecommendations
	if len(got) != 2 || got[0].Template.Name != "Warm" || !got[0].Recommended || got[1].Recommended ||
		got[0].ReplyRate.N != 40 || !strings.Contains(got[0].Why, "reply rate") {
		t.Errorf("recommendations = %+v, want Warm first and recommended on its reply rate", got)
	}
}
