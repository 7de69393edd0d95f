package replies

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestParseMessageIDs(t *testing.T) {
	tests := []struct {
		name  string
		value string
		want  []string
	}{
		{"one", "<a@b.example>", []string{"<a@b.example>"}},
		{"spaces around", "  <a@b.example>  ", []string{"<a@b.example>"}},
		{"folded list", "<a@b.example>\r\n <c@d.example>\r\n\t<e@f.example>", []string{"<a@b.example>", "<c@d.example>", "<e@f.example>"}},
		{"no separator", "<a@b.example><c@d.example>", []string{"<a@b.example>", "<c@d.example>"}},
		{"comma separated", "<a@b.example>, <c@d.example>", []string{"<a@b.example>", "<c@d.example>"}},
		{"folded inside an id", "<DM6PR11MB4171A1B2\r\n C3D4@DM6PR11MB4171.prod.outlook.com>", []string{"<DM6PR11MB4171A1B2C3D4@DM6PR11MB4171.prod.outlook.com>"}},
		{"comment", "<a@b.example> (sent from my phone)", []string{"<a@b.example>"}},
		{"comment holding brackets", "(see <x@y.example>) <a@b.example>", []string{"<a@b.example>"}},
		{"old phrase", `Your message of "Tue, 3 Nov 2026 09:58" <a@b.example>`, []string{"<a@b.example>"}},
		{"bare id", "a@b.example", []string{"<a@b.example>"}},
		{"bare ids", "a@b.example c@d.example", []string{"<a@b.example>", "<c@d.example>"}},
		{"phrase only", "Your message of Tuesday", nil},
		{"empty", "", nil},
		{"empty brackets", "<>", nil},
		{"unclosed", "<a@b.example", []string{"<a@b.example>"}},
		{"case kept", "<AbC@Host.Example>", []string{"<AbC@Host.Example>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseMessageIDs(tt.value); !slices.Equal(got, tt.want) {
				t.Errorf("ParseMessageIDs(%q) = %q, want %q", tt.value, got, tt.want)
			}
		})
	}
}

func TestReferencedIDs(t *testing.T) {
	tests := []struct {
		name string
		in   Inbound
		want []string
	}{
		{"In-Reply-To first, References after, newest first", Inbound{Headers: hs(
			"References", "<root@x.example> <mid@x.example> <parent@x.example>",
			"In-Reply-To", "<parent@x.example>")},
			[]string{"<parent@x.example>", "<mid@x.example>", "<root@x.example>"}},
		{"without In-Reply-To the message answered comes first", Inbound{Headers: hs(
			"References", "<first-offer@x.example> <their-answer@y.example> <second-offer@x.example>")},
			[]string{"<second-offer@x.example>", "<their-answer@y.example>", "<first-offer@x.example>"}},
		{"a long thread keeps its newest ids", Inbound{Headers: hs("References", longThread(250))},
			append([]string{"<m249@x.example>", "<m248@x.example>"}, manyIDs(247, 198)...)},
		{"a very long thread too", Inbound{Headers: hs("References", longThread(2500))}, manyIDs(2499, 200)},
		{"header names in any case", Inbound{Headers: hs("in-reply-to", "<p@x.example>", "REFERENCES", "<r@x.example>")},
			[]string{"<p@x.example>", "<r@x.example>"}},
		{"returned original of a bounce last", Inbound{Headers: hs("References", "<r@x.example>"), ReturnedID: "<orig@x.example>"},
			[]string{"<r@x.example>", "<orig@x.example>"}},
		{"returned original already referenced", Inbound{Headers: hs("In-Reply-To", "<orig@x.example>"), ReturnedID: "<orig@x.example>"},
			[]string{"<orig@x.example>"}},
		{"nothing", Inbound{Headers: hs("Subject", "hello")}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ReferencedIDs(tt.in); !slices.Equal(got, tt.want) {
				t.Errorf("ReferencedIDs = %q, want %q", got, tt.want)
			}
		})
	}
}

// longThread is a References value of n ids, m0 (the root) to m<n-1> (the message answered).
func longThread(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "<m%d@x.example> ", i)
	}
	return b.String()
}

// manyIDs lists n ids counting down from m<from>.
func manyIDs(from, n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("<m%d@x.example>", from-i))
	}
	return out
}
