// Package graph translates GraphQL to feature calls and back; it holds no rules of its own.
package graph

//go:generate go -C .. tool gqlgen generate

import (
	"github.com/engage-email/engage/alerts"
	"github.com/engage-email/engage/attachments"
	"github.com/engage-email/engage/consent"
	"github.com/engage-email/engage/delivery"
	"github.com/engage-email/engage/feed"
	"github.com/engage-email/engage/followed"
	"github.com/engage-email/engage/recommend"
)

// Resolver holds the features the resolvers call; cmd/engage builds it.
type Resolver struct {
	Followed  *followed.Service
	Consent   *consent.Service
	Alerts    *alerts.Service
	SendTimes *recommend.SendTimes
	Catalog   *recommend.Catalog
	Delivery  *delivery.Service
	// LocalOutbox is local mode's stand-in for Exchange; nil with a tenant.
	LocalOutbox *delivery.Outbox
	// Attachments adds files to messages; nil when this Engage was built without it.
	Attachments *attachments.Service
	// Feed is the response feed and its webhooks; nil when the store in use does not have it.
	Feed *feed.Service
}
