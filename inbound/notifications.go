package inbound

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/engage-email/engage/followed"
)

// Notification is one change or lifecycle notification as Graph posts it.
type Notification struct {
	SubscriptionID string `json:"subscriptionId"`
	ClientState    string `json:"clientState"`
	ChangeType     string `json:"changeType"`
	Resource       string `json:"resource"`
	ResourceData   struct {
		ID string `json:"id"`
	} `json:"resourceData"`
	LifecycleEvent string `json:"lifecycleEvent"`
}

// maxNotifications bounds one post; Graph batches far fewer.
const maxNotifications = 1000

// ParseNotifications reads Graph's {"value": [...]} envelope; anything else is followed.ErrBadInput.
func ParseNotifications(body []byte) ([]Notification, error) {
	var env struct {
		Value []Notification `json:"value"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&env); err != nil {
		return nil, fmt.Errorf("%w: notifications are not Graph's JSON envelope: %s", followed.ErrBadInput, err)
	}
	if env.Value == nil {
		return nil, fmt.Errorf("%w: notifications have no value array", followed.ErrBadInput)
	}
	if len(env.Value) > maxNotifications {
		return nil, fmt.Errorf("%w: %d notifications in one post, over %d", followed.ErrBadInput, len(env.Value), maxNotifications)
	}
	return env.Value, nil
}

// Rejected is a notification dropped before queueing, and why, for the log.
type Rejected struct {
	SubscriptionID string
	Reason         string
}

// Accept checks each notification against its subscription (known, and with the client state Engage
// gave it, compared in constant time) and durably queues the ones that pass, before Graph is answered.
// An error means nothing was queued and Graph should retry; rejected ones are reported, not queued.
func (p *Processor) Accept(ctx context.Context, ns []Notification) ([]Rejected, error) {
	var items []Item
	var rejected []Rejected
	subs := map[string]*Subscription{}
	for _, n := range ns {
		s, ok := subs[n.SubscriptionID]
		if !ok {
			got, err := p.store.InboxSubscription(ctx, n.SubscriptionID)
			switch {
			case errors.Is(err, followed.ErrNotFound):
			case err != nil:
				return nil, fmt.Errorf("inbound: subscription %s: %w", n.SubscriptionID, err)
			default:
				s = &got
			}
			subs[n.SubscriptionID] = s
		}
		switch {
		case s == nil:
			rejected = append(rejected, Rejected{n.SubscriptionID, "unknown subscription"})
		case subtle.ConstantTimeCompare([]byte(n.ClientState), []byte(s.ClientState)) != 1:
			rejected = append(rejected, Rejected{n.SubscriptionID, "wrong clientState"})
		case n.LifecycleEvent != "":
			switch n.LifecycleEvent {
			case LifecycleReauthorize, LifecycleRemoved, LifecycleMissed:
				items = append(items, Item{ID: "life:" + n.SubscriptionID + ":" + n.LifecycleEvent + ":" + followed.NewID(p.opts.Now()),
					Kind: ItemLifecycle, Mailbox: s.Mailbox, SubscriptionID: s.ID, Event: n.LifecycleEvent})
			default:
				rejected = append(rejected, Rejected{n.SubscriptionID, "unknown lifecycle event " + n.LifecycleEvent})
			}
		case n.ResourceData.ID == "":
			rejected = append(rejected, Rejected{n.SubscriptionID, "no resource id"})
		default:
			items = append(items, MessageItem(s.Mailbox, n.ResourceData.ID))
		}
	}
	if err := p.Enqueue(ctx, items...); err != nil {
		return nil, err
	}
	return rejected, nil
}
