package replies

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseMIMEErrors(t *testing.T) {
	tests := []struct {
		name    string
		raw     []byte
		tooBig  bool
		wantErr bool
	}{
		{"empty", nil, false, true},
		{"not a header", []byte("garbage without a colon\r\n\r\nbody"), false, true},
		{"over 25 MiB", append([]byte("Subject: big\r\n\r\n"), bytes.Repeat([]byte("a"), MaxMessageSize)...), true, true},
		{"exactly 25 MiB", append([]byte("Subject: big\r\n\r\n"), bytes.Repeat([]byte("a"), MaxMessageSize-16)...), false, false},
		{"header only", []byte("Subject: x"), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseMIME(tt.raw)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseMIME error = %v, want error %v", err, tt.wantErr)
			}
			if errors.Is(err, ErrTooLarge) != tt.tooBig {
				t.Errorf("errors.Is(err, ErrTooLarge) = %v, want %v", !tt.tooBig, tt.tooBig)
			}
		})
	}
}

func TestParseMIMEFields(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		from    string
		subject string
		text    string
	}{
		{"encoded-word subject in latin-1", "From: x@y.example\r\nSubject: =?ISO-8859-1?Q?Abwesenheitsnotiz:_Gr=FC=DFe?=\r\n\r\nhi",
			"x@y.example", "Abwesenheitsnotiz: Grüße", "hi"},
		{"encoded-word subject in windows-1252", "Subject: =?windows-1252?Q?RE_:_=93Offre=94?=\r\n\r\n",
			"", "RE : \u201cOffre\u201d", ""},
		{"unknown charset keeps the raw word", "Subject: =?x-unknown?Q?abc?=\r\n\r\n", "", "=?x-unknown?Q?abc?=", ""},
		{"folded subject", "Subject: Automatic\r\n reply: Pricing\r\n\r\n", "", "Automatic reply: Pricing", ""},
		{"display name with comma", "From: \"Reyes, Dana\" <dana@fabrikam.example>\r\n\r\n", "dana@fabrikam.example", "", ""},
		{"broken From keeps the address", "From: Dana <dana@fabrikam.example\r\n\r\n", "dana@fabrikam.example", "", ""},
		{"LF line endings", "Subject: lf\n\nbody line\n", "", "lf", "body line"},
		{"invalid UTF-8 body", "Subject: x\r\n\r\nbad \xff byte", "", "x", "bad \uFFFD byte"},
		{"latin-1 body", "Content-Type: text/plain; charset=iso-8859-1\r\n\r\nGr\xfc\xdfe", "", "", "Grüße"},
		{"base64 with stray spaces", "Content-Transfer-Encoding: base64\r\n\r\nSGVs bG8g\r\nd29y bGQ=\r\n", "", "", "Hello world"},
		{"damaged base64 keeps the start", "Content-Transfer-Encoding: base64\r\n\r\nSGVsbG8g!!!!", "", "", "Hello"},
		{"bad quoted-printable escape passes through", "Content-Transfer-Encoding: quoted-printable\r\n\r\nok =ZZ rest=\r\nof line", "", "", "ok =ZZ restof line"}, // soft line break joins
		{"multipart without boundary", "Content-Type: multipart/mixed\r\n\r\n--x\r\n\r\nlost\r\n--x--", "", "", ""},
		{"malformed content type is read as its type", "Content-Type: text/html; charset\r\n\r\n<p>hi</p>", "", "", "hi"},
		{"attachment text skipped", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nbody\r\n--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=a.txt\r\n\r\nattached\r\n--b--\r\n",
			"", "", "body"},
		{"alternative prefers plain", "Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--b\r\nContent-Type: text/plain\r\n\r\nplain\r\n--b--\r\n",
			"", "", "plain"},
		{"truncated multipart keeps parts before the damage", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nfirst\r\n--b\r\nContent-Type: text/plain\r\n\r\nsecond, cut",
			"", "", "first\n\nsecond, cut"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := ParseMIME([]byte(tt.raw))
			if err != nil {
				t.Fatalf("ParseMIME: %v", err)
			}
			if in.From != tt.from || in.Subject != tt.subject || in.Text != tt.text {
				t.Errorf("got From %q Subject %q Text %q, want %q %q %q", in.From, in.Subject, in.Text, tt.from, tt.subject, tt.text)
			}
		})
	}
}

func TestParseMIMEHeadersInOrder(t *testing.T) {
	raw := "Received: a\r\nReceived: b\r\n continued\r\nX-Custom: 1\r\nReferences: <r@x>\r\n\t<s@x>\r\nIn-Reply-To: <s@x>\r\n\r\nbody"
	in, err := ParseMIME([]byte(raw))
	if err != nil {
		t.Fatalf("ParseMIME: %v", err)
	}
	want := []Header{{"Received", "a"}, {"Received", "b continued"}, {"X-Custom", "1"}, {"References", "<r@x> <s@x>"}, {"In-Reply-To", "<s@x>"}}
	if !slices.Equal(in.Headers, want) {
		t.Errorf("Headers = %q, want %q", in.Headers, want)
	}
}

func TestParseMIMEBounds(t *testing.T) {
	t.Run("deep nesting stops", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("Content-Type: multipart/mixed; boundary=b0\r\n\r\n")
		for i := 1; i <= 40; i++ {
			b.WriteString("--b" + itoa(i-1) + "\r\nContent-Type: multipart/mixed; boundary=b" + itoa(i) + "\r\n\r\n")
		}
		b.WriteString("--b40\r\nContent-Type: text/plain\r\n\r\ndeep text\r\n")
		in, err := ParseMIME([]byte(b.String()))
		if err != nil {
			t.Fatalf("ParseMIME: %v", err)
		}
		if in.Text != "" {
			t.Errorf("text below the depth limit was read: %q", in.Text)
		}
	})
	t.Run("many parts stop", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("Content-Type: multipart/mixed; boundary=b\r\n\r\n")
		for range maxParts * 2 {
			b.WriteString("--b\r\nContent-Type: text/plain\r\n\r\nx\r\n")
		}
		b.WriteString("--b--\r\n")
		in, err := ParseMIME([]byte(b.String()))
		if err != nil {
			t.Fatalf("ParseMIME: %v", err)
		}
		if n := strings.Count(in.Text, "x"); n == 0 || n >= maxParts {
			t.Errorf("read %d parts, want some but fewer than %d", n, maxParts)
		}
	})
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

func TestReturnedIDOnlyInReports(t *testing.T) {
	const attached = "Content-Type: %s; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nMessage-ID: <orig@x.example>\r\nSubject: hi\r\n\r\nbody\r\n--b--\r\n"
	tests := []struct {
		name, contentType, want string
	}{
		{"bounce returns the original", "multipart/report; report-type=delivery-status", "<orig@x.example>"},
		{"a person forwarding a message does not", "multipart/mixed", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := ParseMIME([]byte(strings.Replace(attached, "%s", tt.contentType, 1)))
			if err != nil {
				t.Fatalf("ParseMIME: %v", err)
			}
			if in.ReturnedID != tt.want {
				t.Errorf("ReturnedID = %q, want %q", in.ReturnedID, tt.want)
			}
			if strings.Contains(in.Text, "body") {
				t.Errorf("text of the enclosed message was read: %q", in.Text)
			}
		})
	}
}

func TestParseDeliveryStatus(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []DeliveryStatus
	}{
		{"Postfix", "Reporting-MTA: dns; mx.example\n\nFinal-Recipient: rfc822; final@x.example\nOriginal-Recipient: rfc822;typed@x.example\nAction: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 <final@x.example>:\n    User unknown\n",
			[]DeliveryStatus{{Recipient: "typed@x.example", Action: "failed", Status: "5.1.1", Diagnostic: "550 5.1.1 <final@x.example>: User unknown"}}},
		{"two recipients, CRLF", "Reporting-MTA: dns;a\r\n\r\nFinal-Recipient: rfc822;a@x.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\nFinal-Recipient: rfc822;b@x.example\r\nAction: delayed\r\nStatus: 4.4.1\r\n",
			[]DeliveryStatus{{Recipient: "a@x.example", Action: "failed", Status: "5.1.1"}, {Recipient: "b@x.example", Action: "delayed", Status: "4.4.1"}}},
		{"status with comment, action in capitals", "Final-Recipient: RFC822; <c@x.example>\nAction: FAILED\nStatus: 5.2.2 (mailbox full)\n",
			[]DeliveryStatus{{Recipient: "c@x.example", Action: "failed", Status: "5.2.2"}}},
		{"utf-8 recipient", "Final-Recipient: utf-8; jürgen@x.example\nAction: failed\nStatus: 5.1.1\n",
			[]DeliveryStatus{{Recipient: "jürgen@x.example", Action: "failed", Status: "5.1.1"}}},
		{"per-message block only", "Reporting-MTA: dns; mx.example\nArrival-Date: today\n", nil},
		{"junk lines skipped", "no colon here\nAction: failed\n: empty name\nStatus: 4.4.7\n",
			[]DeliveryStatus{{Action: "failed", Status: "4.4.7"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseDeliveryStatus(tt.body); !slices.Equal(got, tt.want) {
				t.Errorf("parseDeliveryStatus = %+v, want %+v", got, tt.want)
			}
		})
	}
}
