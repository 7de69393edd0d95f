-- Response feed: webhook endpoints with their delivery state, and the delivery log. The feed itself
-- reads the events table by seq. Times are Unix milliseconds (UTC).
CREATE TABLE feed_endpoints (
    id               TEXT PRIMARY KEY,
    url              TEXT NOT NULL,
    secret           TEXT NOT NULL,
    categories       TEXT NOT NULL, -- comma-separated
    interval_ms      INTEGER NOT NULL,
    created_by       TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_by       TEXT NOT NULL,
    updated_at       INTEGER NOT NULL,
    cursor           INTEGER NOT NULL,
    batch_key        TEXT NOT NULL DEFAULT '', -- '' = no batch pending
    batch_first      INTEGER NOT NULL DEFAULT 0,
    batch_last       INTEGER NOT NULL DEFAULT 0,
    batch_through    INTEGER NOT NULL DEFAULT 0,
    batch_categories TEXT NOT NULL DEFAULT '',
    batch_attempts   INTEGER NOT NULL DEFAULT 0,
    batch_formed_at  INTEGER,
    next_at          INTEGER NOT NULL,
    failing_since    INTEGER,
    disabled_at      INTEGER,
    disabled_reason  TEXT NOT NULL DEFAULT ''
) STRICT;

CREATE TABLE feed_deliveries (
    id          TEXT PRIMARY KEY,
    endpoint_id TEXT NOT NULL REFERENCES feed_endpoints (id) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    outcome     TEXT NOT NULL,
    status_code INTEGER NOT NULL,
    error       TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    records     INTEGER NOT NULL,
    first_seq   INTEGER NOT NULL,
    last_seq    INTEGER NOT NULL
) STRICT;
CREATE INDEX feed_deliveries_endpoint_at ON feed_deliveries (endpoint_id, at DESC, id DESC);
CREATE INDEX feed_deliveries_at ON feed_deliveries (at);
