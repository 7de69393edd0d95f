package replies

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// original is the internetMessageId of the message the corpus responds to.
const original = "<DM6PR11MB4171A1B2C3D4E5F60718293A4B5C6D7E8@DM6PR11MB4171.namprd11.prod.outlook.com>"

// corpusCase states, independently of the golden files, what each message in testdata must be.
type corpusCase struct {
	file       string
	kind       Kind
	rule       string
	hard       bool     // for bounces
	recipients []string // for bounces
	status     string   // for bounces
	refersTo   bool     // ReferencedIDs must include the original
}

var corpus = []corpusCase{
	// Replies from people, with quoted text and localised prefixes.
	{file: "reply_outlook_en.eml", kind: KindReply, rule: RuleNoAutomation, refersTo: true}, // carries X-Auto-Response-Suppress: All
	{file: "reply_gmail.eml", kind: KindReply, rule: RuleNoAutomation, refersTo: true},
	{file: "reply_applemail.eml", kind: KindReply, rule: RuleNoAutomation, refersTo: true},
	{file: "reply_outlook_de_aw.eml", kind: KindReply, rule: RuleNoAutomation, refersTo: true},
	{file: "reply_fr_re_space.eml", kind: KindReply, rule: RuleNoAutomation, refersTo: true},
	{file: "reply_es_rv.eml", kind: KindReply, rule: RuleNoAutomation, refersTo: true},
	{file: "reply_quoting_oof.eml", kind: KindReply, rule: RuleNoAutomation, refersTo: true},
	{file: "reply_via_list_bulk.eml", kind: KindReply, rule: RuleNoAutomation, refersTo: true},
	// Out-of-office and other automatic replies.
	{file: "oof_exchange_en.eml", kind: KindAutoReply, rule: RuleAutoSubmitted, refersTo: true},
	{file: "oof_exchange_de_subject_only.eml", kind: KindAutoReply, rule: RuleOutOfOfficeSubject, refersTo: true},
	{file: "oof_exchange_fr.eml", kind: KindAutoReply, rule: RuleExchangeGenerated, refersTo: true},
	{file: "oof_exchange_es.eml", kind: KindAutoReply, rule: RuleAutoSubmitted, refersTo: true},
	{file: "oof_gmail_en.eml", kind: KindAutoReply, rule: RuleAutoSubmitted, refersTo: true},
	{file: "oof_gmail_de.eml", kind: KindAutoReply, rule: RuleAutoSubmitted, refersTo: true},
	{file: "oof_gmail_fr.eml", kind: KindAutoReply, rule: RuleAutoSubmitted, refersTo: true},
	{file: "oof_gmail_es.eml", kind: KindAutoReply, rule: RuleAutoSubmitted, refersTo: true},
	{file: "oof_autoresponder_es.eml", kind: KindAutoReply, rule: RuleXAutoreply, refersTo: true},
	{file: "oof_vacation_fr_precedence.eml", kind: KindAutoReply, rule: RulePrecedence, refersTo: true},
	{file: "mdn_thunderbird_read.eml", kind: KindAutoReply, rule: RuleReadReceipt, refersTo: true}, // no Auto-Submitted
	{file: "oof_precedence_auto_reply_en.eml", kind: KindAutoReply, rule: RulePrecedence, refersTo: true},
	// Delay notices are not bounces.
	{file: "ndr_gmail_delay.eml", kind: KindAutoReply, rule: RuleDSNDelayed, refersTo: true},
	{file: "dsn_postfix_delayed.eml", kind: KindAutoReply, rule: RuleDSNDelayed, refersTo: true},
	// Non-delivery reports: Exchange, Gmail, Postfix, Exim; hard and soft.
	{file: "ndr_exchange_hard_511.eml", kind: KindBounce, rule: RuleDSNFailed, hard: true,
		recipients: []string{"nobody@fabrikam.example"}, status: "5.1.1", refersTo: true},
	{file: "ndr_exchange_hard_541.eml", kind: KindBounce, rule: RuleDSNFailed, hard: true,
		recipients: []string{"j.doe@contoso.example"}, status: "5.4.1", refersTo: true},
	{file: "ndr_exchange_soft_447.eml", kind: KindBounce, rule: RuleDSNFailed, hard: false,
		recipients: []string{"ops@slow.example"}, status: "4.4.7", refersTo: true},
	{file: "ndr_exchange_soft_422.eml", kind: KindBounce, rule: RuleDSNFailed, hard: false,
		recipients: []string{"dana@fabrikam.example"}, status: "4.2.2", refersTo: true},
	{file: "ndr_exchange_textonly_511.eml", kind: KindBounce, rule: RuleNDRSubject, hard: true,
		recipients: []string{"nobody@fabrikam.example"}, status: "5.1.1"},
	{file: "ndr_gmail_hard_511.eml", kind: KindBounce, rule: RuleDSNFailed, hard: true,
		recipients: []string{"nobody@fabrikam.example"}, status: "5.1.1", refersTo: true},
	{file: "ndr_gmail_hard_541.eml", kind: KindBounce, rule: RuleDSNFailed, hard: true,
		recipients: []string{"j.doe@contoso.example"}, status: "5.4.1", refersTo: true},
	{file: "ndr_gmail_soft_447.eml", kind: KindBounce, rule: RuleDSNFailed, hard: false,
		recipients: []string{"ops@slow.example"}, status: "4.4.7", refersTo: true},
	{file: "ndr_gmail_soft_422.eml", kind: KindBounce, rule: RuleDSNFailed, hard: false,
		recipients: []string{"dana@fabrikam.example"}, status: "4.2.2", refersTo: true},
	{file: "ndr_postfix_hard_511.eml", kind: KindBounce, rule: RuleDSNFailed, hard: true,
		recipients: []string{"nobody@fabrikam.example"}, status: "5.1.1", refersTo: true},
	{file: "ndr_postfix_hard_541.eml", kind: KindBounce, rule: RuleDSNFailed, hard: true,
		recipients: []string{"j.doe@contoso.example"}, status: "5.4.1", refersTo: true},
	{file: "ndr_postfix_soft_447.eml", kind: KindBounce, rule: RuleDSNFailed, hard: false,
		recipients: []string{"ops@slow.example"}, status: "4.4.7", refersTo: true},
	{file: "ndr_postfix_soft_422_textonly.eml", kind: KindBounce, rule: RuleNDRSubject, hard: false,
		recipients: []string{"dana@fabrikam.example"}, status: "4.2.2"},
	{file: "ndr_exim_failed_recipients.eml", kind: KindBounce, rule: RuleFailedRecipients, hard: true,
		recipients: []string{"gone@example.org"}, status: "5.1.1", refersTo: true},
}

func TestCorpus(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.eml"))
	if err != nil {
		t.Fatalf("list corpus: %v", err)
	}
	covered := map[string]bool{}
	for _, c := range corpus {
		covered[c.file] = true
	}
	for _, f := range files {
		if !covered[filepath.Base(f)] {
			t.Errorf("%s has no expectation in the corpus table", f)
		}
	}
	for _, c := range corpus {
		t.Run(strings.TrimSuffix(c.file, ".eml"), func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", c.file))
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			in, err := ParseMIME(raw)
			if err != nil {
				t.Fatalf("ParseMIME: %v", err)
			}
			got := Classify(in)
			if got.Kind != c.kind || got.Rule != c.rule {
				t.Fatalf("Classify = %s by %s, want %s by %s", got.Kind, got.Rule, c.kind, c.rule)
			}
			if c.kind == KindBounce {
				checkBounce(t, got.Bounce, c)
			} else if got.Bounce != nil {
				t.Errorf("Bounce = %+v on a %s", got.Bounce, got.Kind)
			}
			if refs := ReferencedIDs(in); c.refersTo != slices.Contains(refs, original) {
				t.Errorf("ReferencedIDs = %q, want the original: %v", refs, c.refersTo)
			}
			checkGolden(t, c.file, got)
		})
	}
}

func checkBounce(t *testing.T, b *Bounce, c corpusCase) {
	t.Helper()
	if b == nil {
		t.Fatal("bounce without details")
	}
	if b.Hard != c.hard || b.Status != c.status {
		t.Errorf("bounce hard=%v status=%q, want hard=%v status=%q", b.Hard, b.Status, c.hard, c.status)
	}
	if !slices.Equal(b.Recipients, c.recipients) {
		t.Errorf("recipients = %q, want %q", b.Recipients, c.recipients)
	}
}

// checkGolden compares the Result's JSON with testdata/golden/<file>.json, rewriting it under -update.
func checkGolden(t *testing.T, file string, got Result) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep "<a@b>" readable in diagnostics
	enc.SetIndent("", "  ")
	if err := enc.Encode(got); err != nil {
		t.Fatalf("marshal result: %v", err)
	}
	js := buf.Bytes()
	path := filepath.Join("testdata", "golden", strings.TrimSuffix(file, ".eml")+".json")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatalf("create golden dir: %v", err)
		}
		if err := os.WriteFile(path, js, 0o644); err != nil {
			t.Fatalf("write golden: %v", err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create): %v", err)
	}
	if !bytes.Equal(js, want) {
		t.Errorf("result differs from %s:\ngot:\n%s\nwant:\n%s", path, js, want)
	}
}
