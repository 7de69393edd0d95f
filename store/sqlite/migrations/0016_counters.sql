-- A message's counters move to a narrow table of their own. Every batch of tracking events updates the
-- counters of each message it names; in the messages table each row holds the message's HTML, so each
-- update dirtied a page of its own (and read the HTML's overflow pages) where this table fits dozens of
-- messages' counters in one page. Measured with cmd/engage-load, the pixel ratio rose from 0.40 to 0.44.
CREATE TABLE counters (
    message_id       TEXT PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    opens            INTEGER NOT NULL DEFAULT 0,
    unique_opens     INTEGER NOT NULL DEFAULT 0,
    first_opened_at  INTEGER,
    last_opened_at   INTEGER,
    clicks           INTEGER NOT NULL DEFAULT 0,
    unique_clicks    INTEGER NOT NULL DEFAULT 0,
    attachment_opens INTEGER NOT NULL DEFAULT 0,
    replies          INTEGER NOT NULL DEFAULT 0,
    machine_opens    INTEGER NOT NULL DEFAULT 0,
    machine_clicks   INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;
INSERT INTO counters SELECT id, opens, unique_opens, first_opened_at, last_opened_at, clicks, unique_clicks,
    attachment_opens, replies, machine_opens, machine_clicks FROM messages;
ALTER TABLE messages DROP COLUMN opens;
ALTER TABLE messages DROP COLUMN unique_opens;
ALTER TABLE messages DROP COLUMN first_opened_at;
ALTER TABLE messages DROP COLUMN last_opened_at;
ALTER TABLE messages DROP COLUMN clicks;
ALTER TABLE messages DROP COLUMN unique_clicks;
ALTER TABLE messages DROP COLUMN attachment_opens;
ALTER TABLE messages DROP COLUMN replies;
ALTER TABLE messages DROP COLUMN machine_opens;
ALTER TABLE messages DROP COLUMN machine_clicks;
