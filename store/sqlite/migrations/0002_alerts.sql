-- Alerts (first opens, reminders, replies, clicks), follow-up reminders with leases, alert preferences,
-- and the cursor over events that engagement alerts have considered. Times are Unix milliseconds (UTC).

-- seq orders every alert of every owner and never goes backwards (AUTOINCREMENT never reuses a value):
-- instances tail it and clients resume from it.
CREATE TABLE alerts (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT NOT NULL UNIQUE,
    key           TEXT NOT NULL UNIQUE, -- one alert per fact, however often it is reported
    owner         TEXT NOT NULL,
    kind          TEXT NOT NULL,
    at            INTEGER NOT NULL,
    message_id    TEXT NOT NULL,
    subject       TEXT NOT NULL,
    recipient     TEXT NOT NULL,
    device_type   TEXT NOT NULL,
    device_os     TEXT NOT NULL,
    device_client TEXT NOT NULL,
    url           TEXT NOT NULL,
    reminder_id   TEXT NOT NULL,
    condition     TEXT NOT NULL,
    read_at       INTEGER
) STRICT;
CREATE INDEX alerts_owner_seq ON alerts (owner, seq);
CREATE INDEX alerts_owner_unread ON alerts (owner, seq) WHERE read_at IS NULL;

CREATE TABLE reminders (
    id          TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    subject     TEXT NOT NULL,
    condition   TEXT NOT NULL,
    due_at      INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    state       TEXT NOT NULL, -- PENDING, FIRED, SKIPPED, CANCELLED
    reason      TEXT NOT NULL DEFAULT '',
    done_at     INTEGER,
    lease_owner TEXT NOT NULL DEFAULT '',
    lease_until INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;
CREATE INDEX reminders_due ON reminders (due_at) WHERE state = 'PENDING';
CREATE INDEX reminders_owner ON reminders (owner, message_id, due_at);

CREATE TABLE alert_preferences (
    owner             TEXT PRIMARY KEY,
    first_open        INTEGER NOT NULL,
    reply_received    INTEGER NOT NULL,
    link_clicked      INTEGER NOT NULL,
    attachment_opened INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Engagement alerts start from the events already stored when this migration runs: history is not news.
CREATE TABLE alert_cursors (
    name TEXT PRIMARY KEY,
    seq  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
INSERT INTO alert_cursors (name, seq) SELECT 'engagements', coalesce(max(seq), 0) FROM events;
