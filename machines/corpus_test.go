package machines

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata")

func readTestCorpus(t *testing.T) []Case {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "corpus.json"))
	if err != nil {
		t.Fatal(err)
	}
	cases, err := ReadCorpus(data)
	if err != nil {
		t.Fatalf("ReadCorpus: %v", err)
	}
	return cases
}

// TestCorpus checks every documented case against the built-in rules, one subtest per case.
func TestCorpus(t *testing.T) {
	r := DefaultRules()
	for _, cs := range readTestCorpus(t) {
		t.Run(cs.Name, func(t *testing.T) {
			outcomes := Evaluate(r, []Case{cs})
			wrong := 0
			for _, o := range outcomes {
				if cs.Ordinary && (o.Got.Machine || o.Want.Machine) {
					t.Errorf("%s: an ordinary client's hit is a machine (want %v, got %v)", o.ID, o.Want, o.Got)
				}
				if !o.Correct() {
					wrong++
					if !cs.KnownMiss {
						t.Errorf("%s: got %v, want %v (source: %s)", o.ID, o.Got, o.Want, cs.Source)
					}
				}
			}
			if cs.KnownMiss && wrong == 0 {
				t.Errorf("case is marked known_miss but every hit is now labelled right: drop the mark")
			}
		})
	}
}

func TestCorpusCoversEveryReasonAndOrdinaryClient(t *testing.T) {
	cases := readTestCorpus(t)
	reasons := map[Reason]int{}
	ordinary := map[string]bool{}
	for _, cs := range cases {
		for _, h := range cs.Hits {
			reasons[h.Want.Reason]++
		}
		if cs.Ordinary {
			for _, client := range []string{"outlook", "apple-mail", "gmail-web", "gmail-mobile"} {
				if strings.HasPrefix(cs.Name, client) {
					ordinary[client] = true
				}
			}
		}
	}
	for _, r := range []Reason{ReasonNone, ReasonApplePrivacy, ReasonScanner, ReasonPrefetch, ReasonProxied} {
		if reasons[r] == 0 {
			t.Errorf("no corpus hit wants reason %q", r)
		}
	}
	for _, client := range []string{"outlook", "apple-mail", "gmail-web", "gmail-mobile"} {
		if !ordinary[client] {
			t.Errorf("no ordinary %s case in the corpus", client)
		}
	}
}

func TestReportGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteReport(&buf, Evaluate(DefaultRules(), readTestCorpus(t))); err != nil {
		t.Fatalf("WriteReport: %v", err)
	}
	golden := filepath.Join("testdata", "report.golden")
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden (run with -update to create it): %v", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("report differs from %s (run with -update if intended):\n got:\n%s\nwant:\n%s", golden, buf.String(), want)
	}
}

func TestScores(t *testing.T) {
	scanner := Label{true, ReasonScanner, "x"}
	tests := []struct {
		name          string
		outcomes      []Outcome
		reason        string
		wantPrecision float64
		wantRecall    float64
	}{
		{"perfect", []Outcome{{Want: scanner, Got: scanner}}, "SECURITY_SCANNER", 1, 1},
		{"one false positive", []Outcome{{Want: scanner, Got: scanner}, {Want: Label{}, Got: scanner}}, "SECURITY_SCANNER", 0.5, 1},
		{"one miss", []Outcome{{Want: scanner, Got: scanner}, {Want: scanner, Got: Label{}}}, "SECURITY_SCANNER", 1, 0.5},
		{"nothing to find", []Outcome{{Want: Label{}, Got: Label{}}}, "PREFETCH", 1, 1},
		{"machine flag", []Outcome{{Want: scanner, Got: Label{true, ReasonApplePrivacy, "y"}}}, "machine", 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, s := range Scores(tt.outcomes) {
				if s.Name != tt.reason {
					continue
				}
				if s.Precision() != tt.wantPrecision || s.Recall() != tt.wantRecall {
					t.Fatalf("precision %.3f recall %.3f, want %.3f %.3f", s.Precision(), s.Recall(), tt.wantPrecision, tt.wantRecall)
				}
				return
			}
			t.Fatalf("no score named %s", tt.reason)
		})
	}
}

func TestReadCorpusErrors(t *testing.T) {
	hit := `{"id": "a", "kind": "open", "after_send": "1s", "want": {}}`
	tests := []struct {
		name, data, wantErr string
	}{
		{"not json", `[`, "decode corpus"},
		{"no cases", `{"cases": []}`, "no cases"},
		{"unknown field", `{"cases": [], "x": 1}`, "unknown field"},
		{"no source", `{"cases": [{"name": "a", "hits": [` + hit + `]}]}`, "source is required"},
		{"repeated name", `{"cases": [{"name": "a", "source": "s", "hits": [` + hit + `]}, {"name": "a", "source": "s", "hits": [` + hit + `]}]}`, "repeated"},
		{"no hits", `{"cases": [{"name": "a", "source": "s", "hits": []}]}`, "no hits"},
		{"bad kind", `{"cases": [{"name": "a", "source": "s", "hits": [{"id": "a", "kind": "view", "want": {}}]}]}`, "kind"},
		{"bad ip", `{"cases": [{"name": "a", "source": "s", "hits": [{"id": "a", "kind": "open", "ip": "1.2.3", "want": {}}]}]}`, "ip"},
		{"repeated id", `{"cases": [{"name": "a", "source": "s", "hits": [` + hit + `,` + hit + `]}]}`, "repeated"},
		{"bad reason", `{"cases": [{"name": "a", "source": "s", "hits": [{"id": "a", "kind": "open", "want": {"reason": "BOT"}}]}]}`, "not a reason"},
		{"negative time", `{"cases": [{"name": "a", "source": "s", "hits": [{"id": "a", "kind": "open", "after_send": "-1s", "want": {}}]}]}`, "negative"},
		{"ordinary known miss", `{"cases": [{"name": "a", "source": "s", "ordinary": true, "known_miss": true, "hits": [` + hit + `]}]}`, "ordinary"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadCorpus([]byte(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func FuzzReadCorpus(f *testing.F) {
	if data, err := os.ReadFile(filepath.Join("testdata", "corpus.json")); err == nil {
		f.Add(data)
	}
	f.Add([]byte(`{"cases": [{"name": "a", "source": "s", "hits": [{"id": "a", "kind": "click", "method": "HEAD", "ip": "::1", "after_send": "1s", "want": {"reason": "SECURITY_SCANNER"}}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cases, err := ReadCorpus(data)
		if err != nil {
			return
		}
		// Whatever parses must evaluate without panicking and score within [0, 1].
		for _, s := range Scores(Evaluate(DefaultRules(), cases)) {
			if s.Precision() < 0 || s.Precision() > 1 || s.Recall() < 0 || s.Recall() > 1 {
				t.Fatalf("score out of range: %+v", s)
			}
		}
	})
}
