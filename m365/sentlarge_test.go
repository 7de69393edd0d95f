package m365

import (
	"context"
	"strings"
	"testing"

	"github.com/engage-email/engage/m365/m365test"
)

// A long mail's copy in Sent Items reads whole: its answer is over 1 MiB, which used to fail the
// lookup, and with it the reply being matched.
func TestSentMessageWithALongBody(t *testing.T) {
	cl := newCloud(t, nil)
	body := "<p>" + strings.Repeat("x", 1100<<10) + "</p>"
	sent := cl.graph.SendFromOutlook("rep@contoso.com", m365test.OutlookMail{To: "ann@fabrikam.com", Subject: "Big", HTML: body})
	got, err := NewInbox(cl.client).SentMessage(context.Background(), "rep@contoso.com", sent.InternetMessageID)
	if err != nil || len(got.HTML) < len(body) {
		t.Fatalf("SentMessage of a 1.1 MB body: %d bytes, %v", len(got.HTML), err)
	}
}
