package replies

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// checkResult asserts the invariants every Result keeps, whatever the input.
func checkResult(t *testing.T, r Result) {
	t.Helper()
	switch r.Kind {
	case KindReply, KindAutoReply, KindBounce:
	default:
		t.Fatalf("unknown kind %q", r.Kind)
	}
	if r.Rule == "" {
		t.Fatal("result without a rule")
	}
	if (r.Kind == KindBounce) != (r.Bounce != nil) {
		t.Fatalf("kind %s with bounce %+v", r.Kind, r.Bounce)
	}
	if r.Bounce != nil {
		if r.Bounce.Recipients == nil {
			t.Fatal("nil recipients list")
		}
		if r.Bounce.Hard && r.Bounce.Status != "" && !IsHardStatus(r.Bounce.Status) {
			t.Fatalf("hard bounce with soft status %q", r.Bounce.Status)
		}
	}
}

func FuzzParseMIME(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.eml"))
	if err != nil {
		f.Fatalf("list corpus: %v", err)
	}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatalf("read %s: %v", file, err)
		}
		f.Add(raw)
	}
	f.Add([]byte("Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nAction: failed\r\n--b--"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		in, err := ParseMIME(raw)
		if err != nil {
			return
		}
		if !utf8.ValidString(in.Text) || !utf8.ValidString(in.Subject) {
			t.Fatalf("invalid UTF-8 in text %q or subject %q", in.Text, in.Subject)
		}
		for _, h := range in.Headers {
			if !utf8.ValidString(h.Name) || !utf8.ValidString(h.Value) {
				t.Fatalf("invalid UTF-8 in header %q", h)
			}
		}
		checkResult(t, Classify(in))
		for _, id := range ReferencedIDs(in) {
			if !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, ">") || len(id) < 3 {
				t.Fatalf("badly normalised id %q", id)
			}
		}
	})
}

func FuzzClassify(f *testing.F) {
	f.Add("Auto-Submitted", "auto-replied", "Automatic reply: x", "MAILER-DAEMON@x", "multipart/report; report-type=delivery-status", "550 5.1.1 user unknown", "failed", "5.1.1", "smtp; 550 5.1.1")
	f.Add("Precedence", "bulk", "Re: Réponse automatique : x", "a@b", "text/plain", "Delivery has failed to these recipients or groups:\n\nx@y.example", "delayed", "4.4.1", "")
	f.Add("X-Failed-Recipients", "a@b.example", "Undeliverable: x", "postmaster@b", "", "<a@b.example>: said 452 4.2.2", "", "", "")
	f.Fuzz(func(t *testing.T, name, value, subject, from, contentType, text, action, status, diag string) {
		in := Inbound{
			Headers:     []Header{{Name: name, Value: value}},
			From:        from,
			Subject:     subject,
			ContentType: contentType,
			Text:        text,
			Reports:     []DeliveryStatus{{Recipient: from, Action: action, Status: status, Diagnostic: diag}},
		}
		checkResult(t, Classify(in))
		in.Reports = nil
		checkResult(t, Classify(in))
		_ = IsHardStatus(status)
	})
}

func FuzzParseMessageIDs(f *testing.F) {
	f.Add("<a@b> (comment) <c@d>")
	f.Add(`"quoted (not a comment)" <a@b> \(`)
	f.Add("bare@id, other@id")
	f.Fuzz(func(t *testing.T, v string) {
		for _, id := range ParseMessageIDs(v) {
			if len(id) < 3 || id[0] != '<' || id[len(id)-1] != '>' || strings.ContainsAny(id, " \t\r\n") {
				t.Fatalf("ParseMessageIDs(%q) gave %q", v, id)
			}
		}
	})
}

func FuzzParseDeliveryStatus(f *testing.F) {
	f.Add("Reporting-MTA: dns; a\n\nFinal-Recipient: rfc822; a@b\nAction: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550\n 5.1.1 x\n")
	f.Fuzz(func(t *testing.T, body string) {
		for _, r := range parseDeliveryStatus(body) {
			if len(r.Diagnostic) > maxDiagnostic || len(r.Status) > maxDiagnostic {
				t.Fatalf("unbounded field in %+v", r)
			}
		}
	})
}

func FuzzHTMLToText(f *testing.F) {
	f.Add("<p>a</p><br><ul><li>b</li></ul><script>x</script>&amp;")
	f.Add("<title>unclosed")
	f.Fuzz(func(t *testing.T, src string) {
		out := HTMLToText(src)
		if strings.Contains(out, "\n\n\n") || strings.TrimSpace(out) != out {
			t.Fatalf("HTMLToText(%q) = %q: untidy", src, out)
		}
	})
}
