package recommend

import (
	"context"
	"sync"
	"time"
)

// Cached wraps a Store so that the organisation's and domains' histograms, which change slowly and
// cost the most to aggregate, are read at most once per ttl; a recipient's own data is always fresh.
func Cached(st Store, ttl time.Duration, now func() time.Time) Store {
	return &cached{Store: st, ttl: ttl, now: now, domains: map[string]cachedDomain{}}
}

// maxCachedDomains is when stale domain entries are swept, so the cache stays bounded by what one ttl sees.
const maxCachedDomains = 10_000

type cachedDomain struct {
	eng     Engagement
	present bool
	at      time.Time
}

type cached struct {
	Store
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	org     Engagement
	orgAt   time.Time
	domains map[string]cachedDomain
}

func (c *cached) OrgEngagement(ctx context.Context) (Engagement, error) {
	c.mu.Lock()
	if !c.orgAt.IsZero() && c.now().Sub(c.orgAt) < c.ttl {
		org := c.org
		c.mu.Unlock()
		return org, nil
	}
	c.mu.Unlock()
	org, err := c.Store.OrgEngagement(ctx)
	if err != nil {
		return Engagement{}, err
	}
	c.mu.Lock()
	c.org, c.orgAt = org, c.now()
	c.mu.Unlock()
	return org, nil
}

func (c *cached) DomainEngagement(ctx context.Context, domains []string) (map[string]Engagement, error) {
	out := make(map[string]Engagement, len(domains))
	var missing []string
	c.mu.Lock()
	now := c.now()
	for _, d := range domains {
		if e, ok := c.domains[d]; ok && now.Sub(e.at) < c.ttl {
			if e.present {
				out[d] = e.eng
			}
			continue
		}
		missing = append(missing, d)
	}
	c.mu.Unlock()
	if len(missing) == 0 {
		return out, nil
	}
	fresh, err := c.Store.DomainEngagement(ctx, missing)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now = c.now()
	if len(c.domains) > maxCachedDomains {
		for d, e := range c.domains {
			if now.Sub(e.at) >= c.ttl {
				delete(c.domains, d)
			}
		}
	}
	for _, d := range missing {
		e, ok := fresh[d]
		c.domains[d] = cachedDomain{eng: e, present: ok, at: now}
		if ok {
			out[d] = e
		}
	}
	return out, nil
}
