-- Event positions are never reused. Without AUTOINCREMENT SQLite gives a new row max(seq)+1, so
-- erasing the newest event would hand its position to the next one, and a feed or alert cursor
-- resting on that position would skip it. The table is rebuilt with the same columns and indexes.
CREATE TABLE events_new (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
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
INSERT INTO events_new SELECT seq, id, message_id, kind, at, recipient, link, url, ip, user_agent, method,
    device_type, device_os, device_client, machine, reason, rule FROM events;
DROP TABLE events;
ALTER TABLE events_new RENAME TO events;
CREATE INDEX events_message_at ON events (message_id, at DESC, id DESC);
CREATE INDEX events_at ON events (at);
CREATE INDEX events_person_opens ON events (at, id) WHERE kind = 'OPENED' AND machine = 0 AND reason = '';
