package server_test

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

const followMutation = `mutation($in: FollowMessageInput!) { followMessage(input: $in) {
	id following notFollowedReason warnings owner
	recipients { email kind }
	renders { recipients { email } html tracked }
	links { index url } } }`

type followedOut struct {
	FollowMessage struct {
		ID                string
		Following         bool
		NotFollowedReason *string
		Warnings          []string
		Owner             string
		Recipients        []struct{ Email, Kind string }
		Renders           []struct {
			Recipients []struct{ Email string }
			HTML       string
			Tracked    bool
		}
		Links []struct {
			Index int
			URL   string
		}
	}
}

var (
	pixelRe = regexp.MustCompile(`<img src="([^"]+/t/o/[^"]+)"`)
	hrefRe  = regexp.MustCompile(`href="([^"]+/t/c/[^"]+)"`)
)

func get(t *testing.T, method, url, userAgent string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, strings.ReplaceAll(url, "&amp;", "&"), nil)
	req.Header.Set("User-Agent", userAgent)
	res, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

const outlookUA = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17126; Pro)"

func TestFollowOpenClickEndToEnd(t *testing.T) {
	e := start(t)
	const html = `<html><body><p>Hi,</p>
<a href="https://contoso.example/pricing?plan=pro&amp;seats=10#compare">Pricing</a>
<a href="https://contoso.example/démo?q=a b">spaces</a>
<a href="mailto:rep@contoso.com">mail me</a>
<a href="https://contoso.example/case">Case study</a></body></html>`
	var out followedOut
	r := e.gql(t, "rep@contoso.com", followMutation, map[string]any{"in": map[string]any{
		"subject": "Proposal", "html": html, "individual": true,
		"recipients": []map[string]any{{"email": "Ann@Fabrikam.com", "name": "Ann"}, {"email": "bob@fabrikam.com", "kind": "CC"}},
	}}, &out)
	if r.code() != "" {
		t.Fatalf("follow: %+v", r.Errors)
	}
	m := out.FollowMessage
	if !m.Following || m.Owner != "rep@contoso.com" || len(m.Renders) != 2 || len(m.Links) != 2 ||
		m.Links[0].URL != "https://contoso.example/pricing?plan=pro&seats=10#compare" || len(m.Warnings) != 1 {
		t.Fatalf("followed message: %+v", m)
	}
	if m.Renders[0].Recipients[0].Email != "ann@fabrikam.com" || m.Renders[1].Recipients[0].Email != "bob@fabrikam.com" {
		t.Fatalf("renders not one per recipient: %+v", m.Renders)
	}
	annPixel := pixelRe.FindStringSubmatch(m.Renders[0].HTML)[1]
	bobLinks := hrefRe.FindAllStringSubmatch(m.Renders[1].HTML, -1)
	if len(bobLinks) != 2 || !strings.Contains(m.Renders[1].HTML, `href="mailto:rep@contoso.com"`) {
		t.Fatalf("render links: %s", m.Renders[1].HTML)
	}

	// Ann opens in Outlook desktop twice; Bob clicks the pricing link twice and the case study once.
	for range 2 {
		res := get(t, "GET", annPixel, outlookUA)
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "image/gif" || len(body) != 43 ||
			!strings.Contains(res.Header.Get("Cache-Control"), "no-store") {
			t.Fatalf("pixel: %d %v %d bytes", res.StatusCode, res.Header, len(body))
		}
	}
	for _, l := range []string{bobLinks[0][1], bobLinks[0][1], bobLinks[1][1]} {
		res := get(t, "GET", l, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148")
		res.Body.Close()
		if res.StatusCode != http.StatusFound {
			t.Fatalf("click: %d", res.StatusCode)
		}
	}
	res := get(t, "GET", bobLinks[0][1], "curl/8")
	res.Body.Close()
	if loc := res.Header.Get("Location"); loc != "https://contoso.example/pricing?plan=pro&seats=10#compare" {
		t.Fatalf("redirect to %q", loc)
	}

	// Forged and altered tokens: the pixel still answers, nothing is recorded, the redirect refuses.
	forged := []string{
		e.URL + "/t/o/AAAA.gif",
		annPixel[:len(annPixel)-8] + "AAAA.gif",
	}
	for _, u := range forged {
		res := get(t, "GET", u, outlookUA)
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || len(body) != 43 {
			t.Fatalf("forged pixel %s: %d", u, res.StatusCode)
		}
	}
	for _, u := range []string{e.URL + "/t/c/AAAA", bobLinks[0][1][:len(bobLinks[0][1])-3] + "xyz", strings.Replace(annPixel, "/t/o/", "/t/c/", 1)} {
		res := get(t, "GET", u, outlookUA)
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 400 || res.Header.Get("Location") != "" || !strings.Contains(string(body), "not valid") {
			t.Fatalf("forged redirect %s: %d %q", u, res.StatusCode, res.Header.Get("Location"))
		}
	}
	// HEAD is answered too (scanners use it), and recorded.
	res = get(t, "HEAD", annPixel, "Mozilla/5.0")
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("HEAD pixel: %d", res.StatusCode)
	}

	var read struct {
		Message struct {
			Kpis struct {
				Opens, UniqueOpens, Clicks, UniqueClicks int
				FirstOpenedAt                            *string
			}
			Links []struct {
				URL                  string
				Clicks, UniqueClicks int
				ClickThroughRate     float64
			}
			Interactions struct {
				Edges []struct {
					Node struct {
						Kind      string
						Recipient *struct{ Email string }
						URL       *string
						Device    struct{ Type, Os, Client string }
					}
				}
			}
		}
	}
	q := `query($id: ID!) { message(id: $id) { kpis { opens uniqueOpens clicks uniqueClicks firstOpenedAt }
		links { url clicks uniqueClicks clickThroughRate }
		interactions(first: 50) { edges { node { kind recipient { email } url device { type os client } } } } } }`
	if r := e.gql(t, "rep@contoso.com", q, map[string]any{"id": m.ID}, &read); r.code() != "" {
		t.Fatalf("read: %+v", r.Errors)
	}
	k := read.Message.Kpis
	if k.Opens != 3 || k.UniqueOpens != 1 || k.Clicks != 4 || k.UniqueClicks != 1 || k.FirstOpenedAt == nil {
		t.Fatalf("kpis %+v", k)
	}
	links := fmt.Sprintf("%+v", read.Message.Links)
	if want := "[{URL:https://contoso.example/pricing?plan=pro&seats=10#compare Clicks:3 UniqueClicks:1 ClickThroughRate:1} " +
		"{URL:https://contoso.example/case Clicks:1 UniqueClicks:1 ClickThroughRate:1}]"; links != want {
		t.Fatalf("links\n got %s\nwant %s", links, want)
	}
	edges := read.Message.Interactions.Edges
	if len(edges) != 7 {
		t.Fatalf("%d interactions, want 7", len(edges))
	}
	last := edges[len(edges)-1].Node // the oldest: Ann's first open
	if last.Kind != "OPENED" || last.Recipient == nil || last.Recipient.Email != "ann@fabrikam.com" ||
		last.Device.Type != "DESKTOP" || last.Device.Os != "Windows" || last.Device.Client != "Outlook" {
		t.Fatalf("first open: %+v", last)
	}

	// Another salesperson cannot see it; an admin can.
	if r := e.gql(t, "other@contoso.com", q, map[string]any{"id": m.ID}, nil); r.code() != "NOT_FOUND" {
		t.Fatalf("other rep: %+v", r.Errors)
	}
	if r := e.gql(t, "admin@contoso.com", q, map[string]any{"id": m.ID}, nil); r.code() != "" {
		t.Fatalf("admin: %+v", r.Errors)
	}
}

func TestTrackingSurvivesAStoreOutage(t *testing.T) {
	e := start(t)
	var out followedOut
	e.gql(t, "rep@contoso.com", followMutation, map[string]any{"in": map[string]any{
		"subject": "S", "html": `<a href="https://example.com/x">x</a>`, "recipients": []map[string]any{{"email": "a@b.com"}},
	}}, &out)
	html := out.FollowMessage.Renders[0].HTML
	e.DB.Close()
	res := get(t, "GET", pixelRe.FindStringSubmatch(html)[1], outlookUA)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || len(body) != 43 {
		t.Fatalf("pixel with the store down: %d", res.StatusCode)
	}
	res = get(t, "GET", hrefRe.FindStringSubmatch(html)[1], outlookUA)
	res.Body.Close()
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "https://example.com/x" {
		t.Fatalf("redirect with the store down: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
}

func TestFollowBadInput(t *testing.T) {
	e := start(t)
	many := make([]map[string]any, 501)
	for i := range many {
		many[i] = map[string]any{"email": fmt.Sprintf("r%d@example.com", i)}
	}
	one := []map[string]any{{"email": "a@b.com"}}
	tests := []struct {
		name string
		in   map[string]any
		want string
	}{
		{"invalid address named", map[string]any{"subject": "s", "html": "x", "recipients": []map[string]any{{"email": "a@b.com"}, {"email": "not-an-address"}}}, `"not-an-address"`},
		{"no recipients", map[string]any{"subject": "s", "html": "x", "recipients": []map[string]any{}}, "no recipients"},
		{"too many recipients", map[string]any{"subject": "s", "html": "x", "recipients": many}, "501 recipients, over the limit of 500"},
		{"no body", map[string]any{"subject": "s", "recipients": one}, "no body"},
		{"html and text", map[string]any{"subject": "s", "html": "x", "text": "y", "recipients": one}, "not both"},
		{"html too large", map[string]any{"subject": "s", "html": strings.Repeat("x", 65<<10), "recipients": one}, "over the limit"},
		{"unknown kind", map[string]any{"subject": "s", "html": "x", "recipients": []map[string]any{{"email": "a@b.com", "kind": "FROM"}}}, "FROM"},
		{"a line break in the subject", map[string]any{"subject": "Quote\r\nBcc: evil@x.com", "html": "x", "recipients": one},
			"the subject holds a line break"},
		{"a NUL in the subject", map[string]any{"subject": "a\u0000b", "html": "x", "recipients": one}, "the subject holds a line break or another control character"},
		{"subject too long", map[string]any{"subject": strings.Repeat("s", 999), "html": "x", "recipients": one}, "the subject is 999 bytes, over the limit of 998"},
		{"a line break in a name", map[string]any{"subject": "s", "html": "x", "recipients": []map[string]any{{"email": "a@b.com", "name": "Ann\nBcc: x"}}},
			"the name of a@b.com holds a line break"},
		{"name too long", map[string]any{"subject": "s", "html": "x", "recipients": []map[string]any{{"email": "a@b.com", "name": strings.Repeat("n", 1000)}}},
			"the name of a@b.com is 1000 bytes, over the limit of 256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.gql(t, "rep@contoso.com", followMutation, map[string]any{"in": tt.in}, nil)
			if r.status >= 500 || len(r.Errors) == 0 || !strings.Contains(r.Errors[0].Message, tt.want) {
				t.Fatalf("status %d errors %+v, want one containing %q", r.status, r.Errors, tt.want)
			}
		})
	}
	var list struct{ Messages struct{ Edges []any } }
	e.gql(t, "rep@contoso.com", `{ messages { edges { cursor } } }`, nil, &list)
	if len(list.Messages.Edges) != 0 {
		t.Fatalf("bad input left %d messages behind", len(list.Messages.Edges))
	}

	// Broken HTML and plain text are still followed, never dropped.
	for _, in := range []map[string]any{
		{"subject": "broken", "html": `<p><a href="https://x.example/a">unclosed <b>`, "recipients": one},
		{"subject": "text", "text": "Hello <Ann>\nSee https://x.example/b\n", "recipients": one},
	} {
		var out followedOut
		if r := e.gql(t, "rep@contoso.com", followMutation, map[string]any{"in": in}, &out); r.code() != "" {
			t.Fatalf("%s: %+v", in["subject"], r.Errors)
		}
		h := out.FollowMessage.Renders[0].HTML
		if !pixelRe.MatchString(h) || len(out.FollowMessage.Links) != 1 {
			t.Fatalf("%s not tracked: %s", in["subject"], h)
		}
		if in["text"] != nil && (!strings.Contains(h, "Hello &lt;Ann&gt;") || !strings.Contains(h, "<br")) {
			t.Fatalf("text not escaped with breaks kept: %s", h)
		}
	}
}

func TestListingAndSummary(t *testing.T) {
	e := start(t)
	for i, subject := range []string{"Intro Fabrikam", "Follow-up", "Quote"} {
		in := map[string]any{"subject": subject, "html": "<p>x</p>", "recipients": []map[string]any{{"email": "a@b.com"}}, "follow": i != 1}
		if r := e.gql(t, "rep@contoso.com", followMutation, map[string]any{"in": in}, nil); r.code() != "" {
			t.Fatal(r.Errors)
		}
	}
	e.gql(t, "other@contoso.com", followMutation, map[string]any{"in": map[string]any{"subject": "Theirs", "html": "x",
		"recipients": []map[string]any{{"email": "a@b.com"}}}}, nil)

	var page struct {
		Messages struct {
			Edges []struct {
				Node struct {
					Subject           string
					Following         bool
					NotFollowedReason *string
				}
			}
			PageInfo struct {
				HasNextPage bool
				EndCursor   string
			}
		}
	}
	e.gql(t, "rep@contoso.com", `{ messages(first: 2) { edges { node { subject following notFollowedReason } } pageInfo { hasNextPage endCursor } } }`, nil, &page)
	if len(page.Messages.Edges) != 2 || !page.Messages.PageInfo.HasNextPage || page.Messages.Edges[0].Node.Subject != "Quote" ||
		page.Messages.Edges[1].Node.Following || page.Messages.Edges[1].Node.NotFollowedReason == nil {
		t.Fatalf("first page %+v", page.Messages)
	}
	var next struct {
		Messages struct {
			Edges []struct{ Node struct{ Subject string } }
		}
	}
	e.gql(t, "rep@contoso.com", `query($after: String) { messages(first: 2, after: $after) { edges { node { subject } } } }`,
		map[string]any{"after": page.Messages.PageInfo.EndCursor}, &next)
	if len(next.Messages.Edges) != 1 || next.Messages.Edges[0].Node.Subject != "Intro Fabrikam" {
		t.Fatalf("second page %+v", next.Messages)
	}
	if r := e.gql(t, "rep@contoso.com", `{ messages(after: "garbage!") { edges { cursor } } }`, nil, nil); r.code() != "BAD_USER_INPUT" {
		t.Fatalf("bad cursor: %+v", r.Errors)
	}
	var found struct{ Messages struct{ Edges []any } }
	e.gql(t, "rep@contoso.com", `{ messages(filter: {search: "fabrikam", following: true}) { edges { cursor } } }`, nil, &found)
	if len(found.Messages.Edges) != 1 {
		t.Fatalf("search found %d", len(found.Messages.Edges))
	}

	var sum struct {
		EngagementSummary struct {
			FollowedEmails int
			OpenRate       float64
		}
	}
	e.gql(t, "rep@contoso.com", `{ engagementSummary { followedEmails openRate } }`, nil, &sum)
	if sum.EngagementSummary.FollowedEmails != 2 {
		t.Fatalf("summary %+v", sum)
	}
	if r := e.gql(t, "rep@contoso.com", `{ engagementSummary(scope: ORG) { followedEmails } }`, nil, nil); r.code() != "FORBIDDEN" {
		t.Fatalf("org summary as a rep: %+v", r.Errors)
	}
	e.gql(t, "admin@contoso.com", `{ engagementSummary(scope: ORG) { followedEmails } }`, nil, &sum)
	if sum.EngagementSummary.FollowedEmails != 3 {
		t.Fatalf("org summary %+v", sum)
	}
}
