// Package storetest is the conformance suite every backend passes: the store contract, concurrency
// rules included, written once and run against SQLite here and MongoDB wherever one is reachable.
package storetest

import (
	"testing"

	"github.com/engage-email/engage/alerts"
	"github.com/engage-email/engage/attachments"
	"github.com/engage-email/engage/consent"
	"github.com/engage-email/engage/delivery"
	"github.com/engage-email/engage/feed"
	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/inbound"
)

// Stores are a backend's implementations of the features' store interfaces, all on one fresh database.
type Stores struct {
	Followed followed.Store
	Alerts   alerts.Store
	Consent  consent.Store
	// FollowedEraser erases recipients from the same database Followed writes to.
	FollowedEraser consent.Eraser
	// Recommend reads send-time histograms from the database Followed writes to, and keeps templates.
	Recommend RecommendStore
	// Delivery keeps send jobs for messages in the database Followed writes to; Outbox is local mode's mailbox.
	Delivery delivery.Store
	Outbox   delivery.OutboxStore
	// DeliveryEraser erases recipients from the database Outbox writes to; nil skips its cases.
	DeliveryEraser consent.Eraser
	// Attachments keeps the files of messages in the database Followed and Delivery write to.
	Attachments attachments.Store
	// Inbound keeps the queue of inbound mail and Inbox subscriptions, matching replies against Delivery's
	// records; nil for a backend that does not have it yet (its cases are skipped).
	Inbound inbound.Store
	// Feed reads the events Followed writes as response records and keeps webhook endpoints; nil for a
	// backend that does not have it yet (its cases are skipped).
	Feed feed.Store
}

// Run runs the whole suite; open returns fresh, empty stores for each test.
func Run(t *testing.T, open func(t *testing.T) Stores) {
	t.Run("followed", func(t *testing.T) { runFollowed(t, open) })
	t.Run("relabel", func(t *testing.T) { runRelabel(t, open) })
	t.Run("alerts", func(t *testing.T) { runAlerts(t, open) })
	t.Run("consent", func(t *testing.T) { runConsent(t, open) })
	t.Run("consent withdrawn after sending", func(t *testing.T) { runWithdrawnConsent(t, open) })
	t.Run("recommend", func(t *testing.T) { runRecommend(t, open) })
	t.Run("delivery", func(t *testing.T) { runDelivery(t, open) })
	t.Run("delivery erasure", func(t *testing.T) { runDeliveryErasure(t, open) })
	t.Run("attachments", func(t *testing.T) { runAttachments(t, open) })
	t.Run("inbound", func(t *testing.T) { runInbound(t, open) })
	t.Run("feed", func(t *testing.T) { runFeed(t, open) })
}
