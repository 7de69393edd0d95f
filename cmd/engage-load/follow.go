package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// followedSet is the messages the traffic goes to and the tracking paths their renders carry.
type followedSet struct {
	ids    []string
	pixels []string // paths, /t/o/...
	clicks []string // paths, /t/c/...
}

func (f *followedSet) urls(kind, addr string) []string {
	paths := f.pixels
	if kind == "click" {
		paths = f.clicks
	}
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = "http://" + addr + p
	}
	return out
}

var trackingPath = regexp.MustCompile(`/t/[oc]/[A-Za-z0-9_.~-]+`)

// gql posts one GraphQL request as user and decodes its data into out.
func gql(ctx context.Context, addr, user, query string, vars map[string]any, out any) error {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return fmt.Errorf("graphql: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/graphql", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("graphql: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Engage-User", user)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("graphql: %w", err)
	}
	defer res.Body.Close()
	var r struct {
		Data   json.RawMessage `json:"data"`
		Errors []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
		return fmt.Errorf("graphql: status %d: %w", res.StatusCode, err)
	}
	if len(r.Errors) > 0 {
		return fmt.Errorf("graphql: %s", r.Errors[0].Message)
	}
	if err := json.Unmarshal(r.Data, out); err != nil {
		return fmt.Errorf("graphql: decode %s: %w", r.Data, err)
	}
	return nil
}

// follow creates n followed messages, each with a pixel, one tracked link and about body bytes of HTML.
func follow(ctx context.Context, addr, user string, n, body int) (*followedSet, error) {
	set := &followedSet{}
	html := `<p>Hello, see <a href="https://example.com/offer">our offer</a></p>`
	if pad := body - len(html); pad > 0 {
		// Text, not markup: the padding adds bytes to store without adding links to track.
		html += "<p>" + strings.Repeat("Sales email body text. ", pad/23+1)[:pad] + "</p>"
	}
	for i := range n {
		var out struct {
			FollowMessage struct {
				ID      string `json:"id"`
				Renders []struct {
					HTML string `json:"html"`
				} `json:"renders"`
			} `json:"followMessage"`
		}
		err := gql(ctx, addr, user, `mutation($s: String!, $h: String!) { followMessage(input: {subject: $s,
			html: $h, recipients: [{email: "prospect@fabrikam.com"}]}) { id renders { html } } }`,
			map[string]any{"s": fmt.Sprintf("Load %d", i), "h": html}, &out)
		if err != nil {
			return nil, fmt.Errorf("follow message %d: %w", i, err)
		}
		var pixel, click string
		for _, r := range out.FollowMessage.Renders {
			for _, p := range trackingPath.FindAllString(r.HTML, -1) {
				switch {
				case p[3] == 'o' && pixel == "":
					pixel = p
				case p[3] == 'c' && click == "":
					click = p
				}
			}
		}
		if pixel == "" || click == "" {
			return nil, fmt.Errorf("follow message %d: its render has no pixel or no tracked link (is following blocked?)", i)
		}
		set.ids = append(set.ids, out.FollowMessage.ID)
		set.pixels = append(set.pixels, pixel)
		set.clicks = append(set.clicks, click)
	}
	return set, nil
}

// totals are opens and clicks (people and machines) stored for the load's messages.
type totals struct{ opens, clicks int }

func storedTotals(ctx context.Context, addr, user string, set *followedSet) (totals, error) {
	var t totals
	for _, id := range set.ids {
		var out struct {
			Message struct {
				KPIs struct {
					Opens, Clicks, MachineOpens, MachineClicks int
				} `json:"kpis"`
			} `json:"message"`
		}
		if err := gql(ctx, addr, user, `query($id: ID!) { message(id: $id) { kpis { opens clicks machineOpens machineClicks } } }`,
			map[string]any{"id": id}, &out); err != nil {
			return t, fmt.Errorf("counters of %s: %w", id, err)
		}
		k := out.Message.KPIs
		t.opens += k.Opens + k.MachineOpens
		t.clicks += k.Clicks + k.MachineClicks
	}
	return t, nil
}
