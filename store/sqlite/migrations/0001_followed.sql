-- Followed messages, their renders and links, events, and the counters kept as events arrive.
-- Times are Unix milliseconds (UTC).
CREATE TABLE messages (
    id                  TEXT PRIMARY KEY,
    owner               TEXT NOT NULL,
    subject             TEXT NOT NULL,
    html                TEXT NOT NULL,
    individual          INTEGER NOT NULL,
    following           INTEGER NOT NULL,
    not_followed_reason TEXT NOT NULL DEFAULT '',
    template_id         TEXT NOT NULL DEFAULT '',
    warnings            TEXT NOT NULL DEFAULT '[]',
    created_at          INTEGER NOT NULL,
    opens               INTEGER NOT NULL DEFAULT 0,
    unique_opens        INTEGER NOT NULL DEFAULT 0,
    first_opened_at     INTEGER,
    last_opened_at      INTEGER,
    clicks              INTEGER NOT NULL DEFAULT 0,
    unique_clicks       INTEGER NOT NULL DEFAULT 0,
    attachment_opens    INTEGER NOT NULL DEFAULT 0,
    replies             INTEGER NOT NULL DEFAULT 0,
    machine_opens       INTEGER NOT NULL DEFAULT 0,
    machine_clicks      INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX messages_owner_created ON messages (owner, created_at DESC, id DESC);
CREATE INDEX messages_created ON messages (created_at DESC, id DESC);

CREATE TABLE recipients (
    message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    idx        INTEGER NOT NULL,
    email      TEXT NOT NULL,
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    PRIMARY KEY (message_id, idx)
) STRICT, WITHOUT ROWID;
CREATE INDEX recipients_email ON recipients (email);

CREATE TABLE renders (
    message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    idx        INTEGER NOT NULL,
    recipient  INTEGER NOT NULL,
    targets    TEXT NOT NULL,
    html       TEXT NOT NULL,
    tracked    INTEGER NOT NULL,
    PRIMARY KEY (message_id, idx)
) STRICT, WITHOUT ROWID;

CREATE TABLE links (
    message_id    TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    idx           INTEGER NOT NULL,
    url           TEXT NOT NULL,
    clicks        INTEGER NOT NULL DEFAULT 0,
    unique_clicks INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (message_id, idx)
) STRICT, WITHOUT ROWID;

CREATE TABLE events (
    seq           INTEGER PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    message_id    TEXT NOT NULL,
    kind          TEXT NOT NULL,
    at            INTEGER NOT NULL,
    recipient     INTEGER NOT NULL,
    link          INTEGER NOT NULL,
    url           TEXT NOT NULL,
    ip            TEXT NOT NULL,
    user_agent    TEXT NOT NULL,
    method        TEXT NOT NULL,
    device_type   TEXT NOT NULL,
    device_os     TEXT NOT NULL,
    device_client TEXT NOT NULL,
    machine       INTEGER NOT NULL,
    reason        TEXT NOT NULL,
    rule          TEXT NOT NULL
) STRICT;
CREATE INDEX events_message_at ON events (message_id, at DESC, id DESC);

-- Who has opened or clicked, for unique counts and the first-open rule: a row exists once.
CREATE TABLE audience (
    message_id TEXT NOT NULL,
    recipient  INTEGER NOT NULL,
    what       TEXT NOT NULL, -- 'open', 'click', or 'link:<index>'
    at         INTEGER NOT NULL,
    PRIMARY KEY (message_id, recipient, what)
) STRICT, WITHOUT ROWID;
