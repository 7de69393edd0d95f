package replies

import (
	"slices"
	"testing"
)

// hs builds a header list from name, value pairs.
func hs(pairs ...string) []Header {
	var out []Header
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, Header{Name: pairs[i], Value: pairs[i+1]})
	}
	return out
}

// TestClassifyInbound covers what Graph hands over without the raw MIME: headers, subject, sender, text.
func TestClassifyInbound(t *testing.T) {
	tests := []struct {
		name string
		in   Inbound
		kind Kind
		rule string
	}{
		{"plain reply", Inbound{Subject: "Re: Pricing", From: "dana@fabrikam.example", Text: "Looks good."},
			KindReply, RuleNoAutomation},
		{"Auto-Submitted no is a person", Inbound{Subject: "Re: Pricing", Headers: hs("Auto-Submitted", "no")},
			KindReply, RuleNoAutomation},
		{"Auto-Submitted with parameters", Inbound{Subject: "Pricing", Headers: hs("auto-submitted", "auto-replied; owner-email=\"x@y\"")},
			KindAutoReply, RuleAutoSubmitted},
		{"Auto-Submitted with comment", Inbound{Subject: "Pricing", Headers: hs("Auto-Submitted", "auto-generated (vacation)")},
			KindAutoReply, RuleAutoSubmitted},
		{"X-Auto-Response-Suppress alone is not evidence", Inbound{Subject: "RE: Pricing", Headers: hs("X-Auto-Response-Suppress", "All")},
			KindReply, RuleNoAutomation},
		{"X-Autoreply yes", Inbound{Subject: "Pricing", Headers: hs("X-Autoreply", "yes")}, KindAutoReply, RuleXAutoreply},
		{"X-Autoreply no", Inbound{Subject: "Re: Pricing", Headers: hs("X-Autoreply", "no")}, KindReply, RuleNoAutomation},
		{"X-Autorespond", Inbound{Subject: "Pricing", Headers: hs("X-Autorespond", "I am away")}, KindAutoReply, RuleXAutoreply},
		{"Precedence auto_reply", Inbound{Subject: "Pricing", Headers: hs("Precedence", "auto_reply")}, KindAutoReply, RulePrecedence},
		{"Precedence junk", Inbound{Subject: "Pricing", Headers: hs("Precedence", "junk")}, KindAutoReply, RulePrecedence},
		{"Precedence bulk on a list is a person", Inbound{Subject: "Re: Pricing", Headers: hs("Precedence", "bulk", "List-Id", "<sales.lists.example>")},
			KindReply, RuleNoAutomation},
		{"Precedence list is a person", Inbound{Subject: "Re: Pricing", Headers: hs("Precedence", "list")}, KindReply, RuleNoAutomation},
		{"Exchange generated", Inbound{Subject: "Pricing", Headers: hs("X-MS-Exchange-Generated-Message-Source", "Mailbox Rules Agent")},
			KindAutoReply, RuleExchangeGenerated},
		{"headers beat a reply-like subject", Inbound{Subject: "Re: Pricing", Headers: hs("Auto-Submitted", "auto-replied")},
			KindAutoReply, RuleAutoSubmitted},

		{"read receipt report", Inbound{Subject: "Pricing", ContentType: `multipart/report; report-type="disposition-notification"; boundary="b"`},
			KindAutoReply, RuleReadReceipt},
		{"Outlook read receipt subject", Inbound{Subject: "Read: Pricing"}, KindAutoReply, RuleReadReceipt},
		{"Outlook not-read receipt subject", Inbound{Subject: "Not read: Pricing"}, KindAutoReply, RuleReadReceipt},
		{"German read receipt subject", Inbound{Subject: "Gelesen: Angebot"}, KindAutoReply, RuleReadReceipt},
		{"French read receipt subject", Inbound{Subject: "Lu : Offre"}, KindAutoReply, RuleReadReceipt},
		{"a reply about reading is a person", Inbound{Subject: "Re: Read: Pricing"}, KindReply, RuleNoAutomation},
		{"a subject that starts with a read word is a person", Inbound{Subject: "Reading list for Q3"}, KindReply, RuleNoAutomation},
		{"English Exchange subject", Inbound{Subject: "Automatic reply: Pricing"}, KindAutoReply, RuleOutOfOfficeSubject},
		{"English out of office", Inbound{Subject: "Out of Office: Pricing"}, KindAutoReply, RuleOutOfOfficeSubject},
		{"Lotus form", Inbound{Subject: "Dana Reyes is out of the office."}, KindAutoReply, RuleOutOfOfficeSubject},
		{"German Exchange subject", Inbound{Subject: "Automatische Antwort: Angebot"}, KindAutoReply, RuleOutOfOfficeSubject},
		{"German notice", Inbound{Subject: "Abwesenheitsnotiz: Angebot"}, KindAutoReply, RuleOutOfOfficeSubject},
		{"French with no-break space", Inbound{Subject: "Réponse automatique\u00a0: Offre"}, KindAutoReply, RuleOutOfOfficeSubject},
		{"French decomposed accent", Inbound{Subject: "Re\u0301ponse automatique : Offre"}, KindAutoReply, RuleOutOfOfficeSubject},
		{"French absence", Inbound{Subject: "Absence du bureau"}, KindAutoReply, RuleOutOfOfficeSubject},
		{"Spanish Exchange subject", Inbound{Subject: "Respuesta automática: Oferta"}, KindAutoReply, RuleOutOfOfficeSubject},
		{"Spanish out of office", Inbound{Subject: "Fuera de la oficina"}, KindAutoReply, RuleOutOfOfficeSubject},
		{"gateway tag before subject", Inbound{Subject: "[EXTERNAL] Automatic reply: Pricing"}, KindAutoReply, RuleOutOfOfficeSubject},
		{"reply to an auto-reply", Inbound{Subject: "Re: Automatic reply: Pricing"}, KindReply, RuleNoAutomation},
		{"German reply to an auto-reply", Inbound{Subject: "AW: Automatische Antwort: Angebot"}, KindReply, RuleNoAutomation},
		{"French spaced reply prefix", Inbound{Subject: "RE : Réponse automatique : Offre"}, KindReply, RuleNoAutomation},
		{"tagged reply to an auto-reply", Inbound{Subject: "[EXT] RE: Out of Office: Pricing"}, KindReply, RuleNoAutomation},
		{"numbered reply prefix", Inbound{Subject: "Re[2]: Out of office"}, KindReply, RuleNoAutomation},

		{"delayed report", Inbound{Reports: []DeliveryStatus{{Recipient: "a@b.example", Action: "delayed", Status: "4.4.1"}}},
			KindAutoReply, RuleDSNDelayed},
		{"success report", Inbound{Reports: []DeliveryStatus{{Recipient: "a@b.example", Action: "relayed", Status: "2.0.0"}}},
			KindAutoReply, RuleDSNDelivered},
		{"failed beats delayed", Inbound{Reports: []DeliveryStatus{
			{Recipient: "a@b.example", Action: "delayed", Status: "4.4.1"},
			{Recipient: "c@d.example", Action: "failed", Status: "5.1.1"}}},
			KindBounce, RuleDSNFailed},
		{"report with unknown action falls back to text", Inbound{
			From: "MAILER-DAEMON@mx.example", Text: "550 5.1.1 user unknown",
			Reports: []DeliveryStatus{{Action: "weird"}}}, KindBounce, RuleNDRSender},
		{"Exchange NDR header", Inbound{Subject: "Pricing", Headers: hs("X-MS-Exchange-Message-Is-Ndr", ""),
			Text: "Remote Server returned '550 5.1.1 RESOLVER.ADR.RecipNotFound; not found'"}, KindBounce, RuleExchangeNDR},
		{"Graph view of an Outlook NDR", Inbound{From: "postmaster@sales.example.com", Subject: "Undeliverable: Pricing",
			Text: "Delivery has failed to these recipients or groups:\n\nx@y.example (x@y.example)\n"}, KindBounce, RuleNDRSubject},
		{"German NDR subject", Inbound{Subject: "Unzustellbar: Angebot"}, KindBounce, RuleNDRSubject},
		{"Gmail failure subject", Inbound{Subject: "Delivery Status Notification (Failure)"}, KindBounce, RuleNDRSubject},
		{"Gmail delay subject", Inbound{Subject: "Delivery Status Notification (Delay)"}, KindAutoReply, RuleDSNDelayed},
		{"Exchange delay subject", Inbound{Subject: "Delivery delayed:Pricing"}, KindAutoReply, RuleDSNDelayed},
		{"daemon with failure text", Inbound{From: "mailer-daemon@mx.example", Subject: "Notice",
			Text: "Your message could not be delivered."}, KindBounce, RuleNDRSender},
		{"daemon with delay text", Inbound{From: "Mail Delivery Subsystem <mailer-daemon@googlemail.com>", Subject: "Notice",
			Text: "Gmail will retry for 45 more hours."}, KindAutoReply, RuleDSNDelayed},
		{"daemon with nothing to say", Inbound{From: "postmaster@mx.example", Subject: "Hello", Text: "Your quota report."},
			KindReply, RuleNoAutomation},
		{"typed report without parts", Inbound{ContentType: "multipart/report; report-type=delivery-status; boundary=x",
			Subject: "Notice", Text: "host said: 550 5.1.1 unknown"}, KindBounce, RuleDeliveryReport},
		{"report typed only in the headers", Inbound{Headers: hs("Content-Type", "multipart/report;\r\n report-type=delivery-status; boundary=x"),
			Subject: "Notice", Text: "host said: 550 5.1.1 unknown"}, KindBounce, RuleDeliveryReport},
		{"person forwarding a bounce", Inbound{From: "dana@fabrikam.example", Subject: "FW: Undeliverable: Pricing",
			Text: "Delivery has failed to these recipients or groups"}, KindReply, RuleNoAutomation},
		{"Exim failed recipients", Inbound{Subject: "Mail delivery failed", Headers: hs("X-Failed-Recipients", "a@b.example, c@d.example")},
			KindBounce, RuleFailedRecipients},
		{"empty message", Inbound{}, KindReply, RuleNoAutomation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Classify(tt.in)
			if got.Kind != tt.kind || got.Rule != tt.rule {
				t.Errorf("Classify = %s by %s, want %s by %s", got.Kind, got.Rule, tt.kind, tt.rule)
			}
			if (got.Kind == KindBounce) != (got.Bounce != nil) {
				t.Errorf("Kind %s with Bounce %+v", got.Kind, got.Bounce)
			}
		})
	}
}

func TestBounceDetails(t *testing.T) {
	tests := []struct {
		name       string
		in         Inbound
		hard       bool
		status     string
		recipients []string
	}{
		{"hard recipient wins the status", Inbound{Reports: []DeliveryStatus{
			{Recipient: "full@b.example", Action: "failed", Status: "4.2.2", Diagnostic: "452 4.2.2 mailbox full"},
			{Recipient: "gone@b.example", Action: "failed", Status: "5.1.1", Diagnostic: "550 5.1.1 user unknown"},
			{Recipient: "slow@b.example", Action: "delayed", Status: "4.4.1"},
		}}, true, "5.1.1", []string{"full@b.example", "gone@b.example"}},
		{"all soft", Inbound{Reports: []DeliveryStatus{
			{Recipient: "full@b.example", Action: "failed", Status: "5.2.2", Diagnostic: "552 5.2.2 Mailbox full"},
		}}, false, "5.2.2", []string{"full@b.example"}},
		{"status from diagnostic", Inbound{Reports: []DeliveryStatus{
			{Recipient: "x@b.example", Action: "Failed", Diagnostic: "smtp; 550 5.1.10 RESOLVER.ADR.RecipientNotFound"},
		}}, true, "5.1.10", []string{"x@b.example"}},
		{"basic code only", Inbound{Reports: []DeliveryStatus{
			{Recipient: "x@b.example", Action: "failed", Diagnostic: "550 No such user here"},
		}}, true, "", []string{"x@b.example"}},
		{"basic 552 is soft", Inbound{Reports: []DeliveryStatus{
			{Recipient: "x@b.example", Action: "failed", Diagnostic: "552 Requested mail action aborted: exceeded storage"},
		}}, false, "", []string{"x@b.example"}},
		{"no evidence is soft", Inbound{Reports: []DeliveryStatus{{Action: "failed"}}}, false, "", []string{}},
		{"Gmail text without code", Inbound{From: "mailer-daemon@googlemail.com", Subject: "Delivery Status Notification (Failure)",
			Text: "** Address not found **\n\nYour message wasn't delivered to x@nowhere.example because the domain nowhere.example couldn't be found.\n\nDNS Error: Domain name not found"},
			true, "", []string{"x@nowhere.example"}},
		{"Exchange modern text", Inbound{Subject: "Undeliverable: Pricing",
			Text: "Your message to j.doe@contoso.example couldn't be delivered.\nRemote Server returned '550 5.4.1 Recipient address rejected: Access denied.'"},
			true, "5.4.1", []string{"j.doe@contoso.example"}},
		{"policy refusal is soft", Inbound{Subject: "Undeliverable: Pricing",
			Text: "Delivery has failed to these recipients or groups:\n\nboss@contoso.example\nRemote Server returned '550 5.7.1 Delivery not authorized'"},
			false, "5.7.1", []string{"boss@contoso.example"}},
		{"old Gmail list form", Inbound{Subject: "Delivery Status Notification (Failure)",
			Text: "Delivery to the following recipient failed permanently:\n\n     gone@example.org\n\nTechnical details of permanent failure:\n550 5.1.1 unknown"},
			true, "5.1.1", []string{"gone@example.org"}},
		{"the sender's own address is not a recipient", Inbound{Subject: "Undeliverable: Pricing",
			Text: "From: alex@sales.example.com\nRemote Server returned '550 5.1.1 not found'"},
			true, "5.1.1", []string{}},
		{"version numbers are not codes", Inbound{Subject: "Undeliverable: Pricing",
			Text: "Generating server: 15.20.4.1 mx 10.5.1.1\nRemote Server returned '451 4.4.0 DNS query failed'"},
			false, "4.4.0", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Classify(tt.in)
			if got.Kind != KindBounce || got.Bounce == nil {
				t.Fatalf("Classify = %+v, want a bounce", got)
			}
			b := got.Bounce
			if b.Hard != tt.hard || b.Status != tt.status || !slices.Equal(b.Recipients, tt.recipients) {
				t.Errorf("bounce = hard %v status %q recipients %q, want hard %v status %q recipients %q",
					b.Hard, b.Status, b.Recipients, tt.hard, tt.status, tt.recipients)
			}
		})
	}
}
