-- Inbound mail (replies, auto-replies, bounces): the durable queue Graph's notifications land in, the
-- Inbox subscriptions with their client-state secrets, delta links, and soft-bounce streaks.
-- Times are Unix milliseconds (UTC).
CREATE TABLE inbound_queue (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('MESSAGE', 'RAW', 'LIFECYCLE')),
    mailbox         TEXT NOT NULL,
    graph_id        TEXT NOT NULL DEFAULT '',
    raw             BLOB,
    subscription_id TEXT NOT NULL DEFAULT '',
    event           TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL CHECK (status IN ('PENDING', 'DONE', 'DEAD')),
    enqueued_at     INTEGER NOT NULL,
    due_at          INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT '',
    lease_owner     TEXT NOT NULL DEFAULT '',
    lease_until     INTEGER NOT NULL DEFAULT 0,
    done_at         INTEGER
) STRICT;
-- Claims look for pending items that are due; the purge for items done long ago.
CREATE INDEX inbound_queue_due ON inbound_queue (status, due_at, enqueued_at);
CREATE INDEX inbound_queue_done ON inbound_queue (done_at) WHERE status = 'DONE';

CREATE TABLE inbound_subscriptions (
    id           TEXT PRIMARY KEY,
    mailbox      TEXT NOT NULL,
    client_state TEXT NOT NULL,
    expires_at   INTEGER NOT NULL,
    created_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX inbound_subscriptions_mailbox ON inbound_subscriptions (mailbox);

CREATE TABLE inbound_delta_links (
    mailbox TEXT PRIMARY KEY,
    link    TEXT NOT NULL
) STRICT, WITHOUT ROWID;

-- Soft bounces in a row per address; a human open or reply after last_at ends the streak.
CREATE TABLE inbound_bounce_streaks (
    email   TEXT PRIMARY KEY,
    streak  INTEGER NOT NULL,
    last_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
-- The soft bounces counted, so processing one bounce twice counts it once.
CREATE TABLE inbound_soft_bounces (
    event_id TEXT PRIMARY KEY,
    email    TEXT NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX inbound_soft_bounces_email ON inbound_soft_bounces (email);

-- Active senders are found by the jobs they sent.
CREATE INDEX delivery_jobs_sent ON delivery_jobs (sent_at) WHERE status = 'SENT';
