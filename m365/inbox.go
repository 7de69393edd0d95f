package m365

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/inbound"
	"github.com/engage-email/engage/replies"
)

// Inbox lets inbound watch senders' Inboxes through Graph: change-notification subscriptions, messages
// with their internet headers, and delta queries; app-only, since it runs with no user present.
type Inbox struct{ c *Client }

// NewInbox returns the Graph inbox over c.
func NewInbox(c *Client) *Inbox { return &Inbox{c: c} }

var _ inbound.Mailbox = (*Inbox)(nil)

type subscriptionJSON struct {
	ID                       string `json:"id,omitempty"`
	ChangeType               string `json:"changeType,omitempty"`
	NotificationURL          string `json:"notificationUrl,omitempty"`
	LifecycleNotificationURL string `json:"lifecycleNotificationUrl,omitempty"`
	Resource                 string `json:"resource,omitempty"`
	ExpirationDateTime       string `json:"expirationDateTime"`
	ClientState              string `json:"clientState,omitempty"`
}

// Subscribe implements inbound.Mailbox.
func (b *Inbox) Subscribe(ctx context.Context, r inbound.SubscriptionRequest) (string, time.Time, error) {
	caller := Caller{User: r.Mailbox}
	in := subscriptionJSON{ChangeType: "created", NotificationURL: r.NotificationURL, LifecycleNotificationURL: r.LifecycleURL,
		Resource: "users/" + url.PathEscape(r.Mailbox) + "/mailFolders('inbox')/messages", ClientState: r.ClientState,
		ExpirationDateTime: r.ExpiresAt.UTC().Format(time.RFC3339)}
	var out subscriptionJSON
	if err := b.c.callJSON(ctx, "subscribe to the inbox of "+r.Mailbox, &caller, http.MethodPost, b.c.graphURL+"/subscriptions", in, &out); err != nil {
		return "", time.Time{}, err
	}
	exp, err := time.Parse(time.RFC3339Nano, out.ExpirationDateTime)
	if err != nil || out.ID == "" {
		return "", time.Time{}, fmt.Errorf("m365: subscribe to the inbox of %s: graph returned id %q, expiry %q", r.Mailbox, out.ID, out.ExpirationDateTime)
	}
	return out.ID, exp, nil
}

// Renew implements inbound.Mailbox.
func (b *Inbox) Renew(ctx context.Context, id string, expires time.Time) (time.Time, error) {
	var out subscriptionJSON
	err := b.c.callJSON(ctx, "renew subscription "+id, &Caller{User: "app"}, http.MethodPatch, b.subscriptionURL(id),
		subscriptionJSON{ExpirationDateTime: expires.UTC().Format(time.RFC3339)}, &out)
	if errors.Is(err, ErrNotFound) {
		return time.Time{}, fmt.Errorf("%w: %w", inbound.ErrSubscriptionGone, err)
	}
	if err != nil {
		return time.Time{}, err
	}
	exp, err := time.Parse(time.RFC3339Nano, out.ExpirationDateTime)
	if err != nil {
		return time.Time{}, fmt.Errorf("m365: renew subscription %s: expiry %q: %w", id, out.ExpirationDateTime, err)
	}
	return exp, nil
}

// Unsubscribe implements inbound.Mailbox.
func (b *Inbox) Unsubscribe(ctx context.Context, id string) error {
	err := b.c.call(ctx, "delete subscription "+id, &Caller{User: "app"}, http.MethodDelete, b.subscriptionURL(id), "", nil, nil)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

func (b *Inbox) subscriptionURL(id string) string {
	return b.c.graphURL + "/subscriptions/" + url.PathEscape(id)
}

type messageJSON struct {
	ID                     string           `json:"id"`
	InternetMessageID      string           `json:"internetMessageId"`
	ConversationID         string           `json:"conversationId"`
	ReceivedDateTime       string           `json:"receivedDateTime"`
	Subject                string           `json:"subject"`
	From                   *recipientJSON   `json:"from"`
	Body                   *bodyJSON        `json:"body"`
	InternetMessageHeaders []replies.Header `json:"internetMessageHeaders"`
}

type recipientJSON struct {
	EmailAddress struct {
		Address string `json:"address"`
	} `json:"emailAddress"`
}

type bodyJSON struct {
	ContentType string `json:"contentType"`
	Content     string `json:"content"`
}

// Message implements inbound.Mailbox.
func (b *Inbox) Message(ctx context.Context, mailbox, id string) (inbound.Message, error) {
	caller := Caller{User: mailbox}
	target := b.c.graphURL + "/users/" + url.PathEscape(mailbox) + "/messages/" + url.PathEscape(id) + "?" + url.Values{
		"$select": {"internetMessageId,conversationId,receivedDateTime,subject,from,body,internetMessageHeaders"}}.Encode()
	var m messageJSON
	err := b.c.callJSON(ctx, "read message "+id+" of "+mailbox, &caller, http.MethodGet, target, nil, &m)
	if errors.Is(err, ErrNotFound) {
		return inbound.Message{}, fmt.Errorf("%w: %w", followed.ErrNotFound, err)
	}
	if err != nil {
		return inbound.Message{}, err
	}
	out := inbound.Message{GraphID: m.ID, InternetMessageID: m.InternetMessageID, ConversationID: m.ConversationID,
		Inbound: replies.Inbound{Headers: m.InternetMessageHeaders, Subject: m.Subject}}
	if m.From != nil {
		out.Inbound.From = strings.ToLower(m.From.EmailAddress.Address)
	}
	if m.Body != nil {
		out.Inbound.Text = m.Body.Content
		if strings.EqualFold(m.Body.ContentType, "html") {
			out.Inbound.Text = replies.HTMLToText(m.Body.Content)
		}
	}
	for _, h := range m.InternetMessageHeaders {
		if strings.EqualFold(h.Name, "Content-Type") {
			out.Inbound.ContentType = h.Value
		}
	}
	if t, err := time.Parse(time.RFC3339Nano, m.ReceivedDateTime); err == nil {
		out.ReceivedAt = t.UTC()
	}
	return out, nil
}

// SentMessage implements inbound.Mailbox: Sent Items filtered on internetMessageId, which Graph supports.
func (b *Inbox) SentMessage(ctx context.Context, mailbox, internetID string) (inbound.SentMail, error) {
	caller := Caller{User: mailbox}
	target := b.c.graphURL + "/users/" + url.PathEscape(mailbox) + "/mailFolders/sentitems/messages?" + url.Values{
		"$filter": {"internetMessageId eq '" + strings.ReplaceAll(internetID, "'", "''") + "'"},
		"$select": {"internetMessageId,conversationId,sentDateTime,body"}, "$top": {"1"}}.Encode()
	var out struct {
		Value []struct {
			InternetMessageID string    `json:"internetMessageId"`
			ConversationID    string    `json:"conversationId"`
			SentDateTime      string    `json:"sentDateTime"`
			Body              *bodyJSON `json:"body"`
		} `json:"value"`
	}
	if err := b.c.callJSON(ctx, "find "+internetID+" in the Sent Items of "+mailbox, &caller, http.MethodGet, target, nil, &out); err != nil {
		return inbound.SentMail{}, err
	}
	if len(out.Value) == 0 {
		return inbound.SentMail{}, fmt.Errorf("m365: %s is not in the Sent Items of %s: %w", internetID, mailbox, followed.ErrNotFound)
	}
	m := out.Value[0]
	sent := inbound.SentMail{InternetMessageID: m.InternetMessageID, ConversationID: m.ConversationID}
	if m.Body != nil && strings.EqualFold(m.Body.ContentType, "html") {
		sent.HTML = m.Body.Content
	}
	if t, err := time.Parse(time.RFC3339Nano, m.SentDateTime); err == nil {
		sent.SentAt = t.UTC()
	}
	return sent, nil
}

// deltaPageSize is the page a delta query asks for: Graph's default is about 10 messages, so a catch-up
// after a busy day would take hundreds of requests. Graph may answer fewer; 200 ids stay far below the
// 1 MiB answer Engage reads.
const deltaPageSize = 200

// Delta implements inbound.Mailbox: the first page filters on receivedDateTime, later ones follow Graph's links.
func (b *Inbox) Delta(ctx context.Context, mailbox, link string, since time.Time) (inbound.DeltaPage, error) {
	caller := Caller{User: mailbox}
	target := link
	if target == "" {
		target = b.c.graphURL + "/users/" + url.PathEscape(mailbox) + "/mailFolders/inbox/messages/delta?" + url.Values{
			"$select": {"id"}, "$filter": {"receivedDateTime ge " + since.UTC().Format(time.RFC3339)}}.Encode()
	} else if !strings.HasPrefix(target, b.c.graphURL+"/") {
		return inbound.DeltaPage{}, fmt.Errorf("m365: delta of %s: link %q is not on Graph", mailbox, link)
	}
	var out struct {
		Value []struct {
			ID      string         `json:"id"`
			Removed map[string]any `json:"@removed"`
		} `json:"value"`
		NextLink  string `json:"@odata.nextLink"`
		DeltaLink string `json:"@odata.deltaLink"`
	}
	// On every page: it is a header, which Graph's links do not carry.
	prefer := http.Header{"Prefer": {"odata.maxpagesize=" + strconv.Itoa(deltaPageSize)}}
	if err := b.c.call(ctx, "delta of the inbox of "+mailbox, &caller, http.MethodGet, target, "", nil, &out, prefer); err != nil {
		return inbound.DeltaPage{}, err
	}
	page := inbound.DeltaPage{NextLink: out.NextLink, DeltaLink: out.DeltaLink, MessageIDs: []string{}}
	for _, v := range out.Value {
		if v.Removed == nil && v.ID != "" {
			page.MessageIDs = append(page.MessageIDs, v.ID)
		}
	}
	return page, nil
}
