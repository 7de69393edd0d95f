package machines

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"text/tabwriter"
	"time"
)

// Case is one labelled scenario of a corpus: the hits one recipient's message drew, in order, each
// with the label it should end up with. Corpora measure rules against documented behaviour.
type Case struct {
	Name     string
	Source   string // where the behaviour is documented
	Ordinary bool   // an ordinary client (Outlook, Apple Mail without MPP, Gmail): must stay human
	// KnownMiss marks a documented behaviour the rules are known to get wrong, kept so the
	// report measures it instead of hiding it.
	KnownMiss bool
	Hits      []CaseHit
}

// CaseHit is a hit of a Case with the label it should end with.
type CaseHit struct {
	Hit  Hit
	Want Label
}

type corpusJSON struct {
	Cases []caseJSON `json:"cases"`
}

type caseJSON struct {
	Name        string        `json:"name"`
	Source      string        `json:"source"`
	Ordinary    bool          `json:"ordinary"`
	KnownMiss   bool          `json:"known_miss"`
	SentUnknown bool          `json:"sent_unknown"`
	Hits        []caseHitJSON `json:"hits"`
}

type caseHitJSON struct {
	ID        string   `json:"id"`
	Kind      string   `json:"kind"`
	Method    string   `json:"method"`
	IP        string   `json:"ip"`
	UserAgent string   `json:"ua"`
	Link      string   `json:"link"`
	AfterSend duration `json:"after_send"`
	Visitor   string   `json:"visitor"`
	Want      struct {
		Reason Reason `json:"reason"`
		Rule   string `json:"rule"`
	} `json:"want"`
}

// corpusSentAt is when every corpus message was sent; hits are placed relative to it.
func corpusSentAt() time.Time { return time.Date(2025, time.January, 6, 9, 0, 0, 0, time.UTC) }

// ReadCorpus parses a labelled corpus (JSON; see testdata/corpus.json).
func ReadCorpus(data []byte) ([]Case, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var cj corpusJSON
	if err := dec.Decode(&cj); err != nil {
		return nil, fmt.Errorf("decode corpus: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("decode corpus: trailing data after the JSON object")
	}
	if len(cj.Cases) == 0 {
		return nil, errors.New("corpus: no cases")
	}
	names := make(map[string]bool, len(cj.Cases))
	out := make([]Case, 0, len(cj.Cases))
	for i, c := range cj.Cases {
		if strings.TrimSpace(c.Name) == "" || names[c.Name] {
			return nil, fmt.Errorf("corpus case %d: name %q is empty or repeated", i, c.Name)
		}
		names[c.Name] = true
		cs, err := c.parse()
		if err != nil {
			return nil, fmt.Errorf("corpus case %q: %w", c.Name, err)
		}
		out = append(out, cs)
	}
	return out, nil
}

func (c caseJSON) parse() (Case, error) {
	if strings.TrimSpace(c.Source) == "" {
		return Case{}, errors.New("source is required: cite where the behaviour is documented")
	}
	if len(c.Hits) == 0 {
		return Case{}, errors.New("no hits")
	}
	sent := corpusSentAt()
	if c.Ordinary && c.KnownMiss {
		return Case{}, errors.New("an ordinary case cannot be a known miss: people must never be labelled machines")
	}
	cs := Case{Name: c.Name, Source: c.Source, Ordinary: c.Ordinary, KnownMiss: c.KnownMiss}
	ids := make(map[string]bool, len(c.Hits))
	for j, hj := range c.Hits {
		if hj.ID == "" || ids[hj.ID] {
			return Case{}, fmt.Errorf("hit %d: id %q is empty or repeated", j, hj.ID)
		}
		ids[hj.ID] = true
		kind, ok := parseKind(hj.Kind)
		if !ok {
			return Case{}, fmt.Errorf("hit %s: kind %q: want open, click or honeypot", hj.ID, hj.Kind)
		}
		var ip netip.Addr
		if hj.IP != "" {
			a, err := netip.ParseAddr(hj.IP)
			if err != nil {
				return Case{}, fmt.Errorf("hit %s: ip: %w", hj.ID, err)
			}
			ip = a
		}
		if hj.AfterSend < 0 {
			return Case{}, fmt.Errorf("hit %s: after_send is negative", hj.ID)
		}
		if !validReason(hj.Want.Reason) {
			return Case{}, fmt.Errorf("hit %s: want.reason %q is not a reason", hj.ID, hj.Want.Reason)
		}
		method := hj.Method
		if method == "" {
			method = "GET"
		}
		visitor := hj.Visitor
		if visitor == "" {
			visitor = c.Name
		}
		h := Hit{
			ID: hj.ID, Kind: kind, Method: method, IP: ip, UserAgent: hj.UserAgent, Link: hj.Link,
			At: sent.Add(time.Duration(hj.AfterSend)), Visitor: visitor,
		}
		if !c.SentUnknown {
			h.SentAt = sent
		}
		want := Label{Machine: machineReason(hj.Want.Reason), Reason: hj.Want.Reason, Rule: hj.Want.Rule}
		cs.Hits = append(cs.Hits, CaseHit{Hit: h, Want: want})
	}
	return cs, nil
}

// Outcome is the label one corpus hit got next to the one it should have.
type Outcome struct {
	Case      string
	ID        string
	Ordinary  bool
	KnownMiss bool
	Want      Label
	Got       Label
}

// Correct reports whether the label has the wanted reason (and rule, when the corpus names one).
func (o Outcome) Correct() bool {
	if o.Got.Reason != o.Want.Reason || o.Got.Machine != o.Want.Machine {
		return false
	}
	return o.Want.Rule == "" || o.Got.Rule == o.Want.Rule
}

// Unexpected returns the outcomes that are wrong and not known misses: a rule regression.
func Unexpected(outcomes []Outcome) []Outcome {
	var out []Outcome
	for _, o := range outcomes {
		if !o.Correct() && !o.KnownMiss {
			out = append(out, o)
		}
	}
	return out
}

// Evaluate runs every case through a fresh classifier with r, as the recorder would: hits in order,
// relabels applied, then the prefetch decision once the case is over.
func Evaluate(r *Rules, cases []Case) []Outcome {
	var out []Outcome
	for _, cs := range cases {
		out = append(out, evaluateCase(r, cs)...)
	}
	return out
}

func evaluateCase(r *Rules, cs Case) []Outcome {
	var clock time.Time
	c := NewClassifier(r, func() time.Time { return clock })
	got := make(map[string]Label, len(cs.Hits))
	for _, ch := range cs.Hits {
		clock = ch.Hit.At
		lbl, relabels := c.Label(ch.Hit)
		got[ch.Hit.ID] = lbl
		for _, rl := range relabels {
			got[rl.ID] = rl.Label
		}
	}
	for i, ch := range cs.Hits {
		if ch.Hit.Kind != Open || !got[ch.Hit.ID].Human() {
			continue
		}
		var later []Hit
		for _, l := range cs.Hits[i+1:] {
			if !got[l.Hit.ID].Machine {
				later = append(later, l.Hit)
			}
		}
		if lbl, ok := c.Prefetch(ch.Hit, later); ok {
			got[ch.Hit.ID] = lbl
		}
	}
	out := make([]Outcome, 0, len(cs.Hits))
	for _, ch := range cs.Hits {
		out = append(out, Outcome{
			Case: cs.Name, ID: ch.Hit.ID, Ordinary: cs.Ordinary, KnownMiss: cs.KnownMiss,
			Want: ch.Want, Got: got[ch.Hit.ID],
		})
	}
	return out
}

// Score is precision and recall for one reason over a corpus.
type Score struct {
	Name      string // a reason, or "machine" for the machine flag whatever the reason
	Support   int    // hits that should carry it
	Predicted int    // hits that got it
	Correct   int    // hits that got it and should
}

// Precision is Correct/Predicted, or 1 when nothing was predicted.
func (s Score) Precision() float64 {
	if s.Predicted == 0 {
		return 1
	}
	return float64(s.Correct) / float64(s.Predicted)
}

// Recall is Correct/Support, or 1 when nothing should have been found.
func (s Score) Recall() float64 {
	if s.Support == 0 {
		return 1
	}
	return float64(s.Correct) / float64(s.Support)
}

// Scores computes precision and recall per reason, then for the machine flag.
func Scores(outcomes []Outcome) []Score {
	reasons := []Reason{ReasonApplePrivacy, ReasonScanner, ReasonPrefetch, ReasonProxied}
	scores := make([]Score, 0, len(reasons)+1)
	for _, r := range reasons {
		s := Score{Name: string(r)}
		for _, o := range outcomes {
			want, got := o.Want.Reason == r, o.Got.Reason == r
			s.Support += b2i(want)
			s.Predicted += b2i(got)
			s.Correct += b2i(want && got)
		}
		scores = append(scores, s)
	}
	m := Score{Name: "machine"}
	for _, o := range outcomes {
		m.Support += b2i(o.Want.Machine)
		m.Predicted += b2i(o.Got.Machine)
		m.Correct += b2i(o.Want.Machine && o.Got.Machine)
	}
	return append(scores, m)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// WriteReport prints the scores as a table, then every hit labelled other than it should be.
func WriteReport(w io.Writer, outcomes []Outcome) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "reason\tsupport\tpredicted\tcorrect\tprecision\trecall\n")
	for _, s := range Scores(outcomes) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.3f\t%.3f\n", s.Name, s.Support, s.Predicted, s.Correct, s.Precision(), s.Recall())
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	wrong, known := 0, 0
	for _, o := range outcomes {
		if o.Correct() {
			continue
		}
		tag := "MISMATCH"
		if o.KnownMiss {
			tag = "KNOWN MISS"
			known++
		} else {
			wrong++
		}
		if _, err := fmt.Fprintf(w, "%s %s/%s: want %s got %s\n", tag, o.Case, o.ID, o.Want, o.Got); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	}
	right := len(outcomes) - wrong - known
	if _, err := fmt.Fprintf(w, "%d hits: %d as the corpus says, %d known misses, %d unexpected\n", len(outcomes), right, known, wrong); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}
