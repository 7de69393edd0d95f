-- Delivery: one job per message sent (now or later) with its lease, what happened to each render in the
-- sender's mailbox, and the local outbox that stands in for Exchange without a tenant.
-- Times are Unix milliseconds (UTC).
CREATE TABLE delivery_jobs (
    message_id   TEXT PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    owner        TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('SCHEDULED', 'SENDING', 'SENT', 'FAILED')),
    scheduled_at INTEGER,
    due_at       INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    reason       TEXT NOT NULL DEFAULT '',
    lease_owner  TEXT NOT NULL DEFAULT '',
    lease_until  INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    sent_at      INTEGER
) STRICT;
-- Claims look for due scheduled jobs and for sending jobs whose holder's lease ran out.
CREATE INDEX delivery_jobs_due ON delivery_jobs (status, due_at);
CREATE INDEX delivery_jobs_lease ON delivery_jobs (status, lease_until);

-- A row per render that reached the mailbox: written when its draft is saved, completed when sent.
CREATE TABLE render_sends (
    message_id          TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    render              INTEGER NOT NULL,
    draft_id            TEXT NOT NULL,
    internet_message_id TEXT NOT NULL,
    conversation_id     TEXT NOT NULL,
    sent_at             INTEGER,
    PRIMARY KEY (message_id, render)
) STRICT, WITHOUT ROWID;
-- Replies name the mail they answer by Internet message id and Exchange conversation.
CREATE INDEX render_sends_internet_id ON render_sends (internet_message_id) WHERE internet_message_id != '';
CREATE INDEX render_sends_conversation ON render_sends (conversation_id) WHERE conversation_id != '';

CREATE TABLE outbox (
    id                  TEXT PRIMARY KEY,
    sender              TEXT NOT NULL,
    recipients          TEXT NOT NULL, -- JSON {"to": [...], "cc": [...], "bcc": [...]}
    subject             TEXT NOT NULL,
    html                TEXT NOT NULL,
    headers             TEXT NOT NULL, -- JSON object
    internet_message_id TEXT NOT NULL,
    conversation_id     TEXT NOT NULL,
    created_at          INTEGER NOT NULL,
    sent_at             INTEGER
) STRICT;
CREATE INDEX outbox_sent ON outbox (sent_at DESC, id DESC) WHERE sent_at IS NOT NULL;
CREATE INDEX outbox_sender_sent ON outbox (sender, sent_at DESC, id DESC) WHERE sent_at IS NOT NULL;
