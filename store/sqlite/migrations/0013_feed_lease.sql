-- Webhook endpoints are leased for one step at a time, so two instances (or two processes on one
-- file) never step the same endpoint at once. '' and 0 = not leased.
ALTER TABLE feed_endpoints ADD COLUMN lease_owner TEXT NOT NULL DEFAULT '';
ALTER TABLE feed_endpoints ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;
