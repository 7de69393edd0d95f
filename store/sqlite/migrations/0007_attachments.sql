-- Attachments: files added to followed messages, shared as tracked links (on the sender's drive) or
-- kept for delivery to attach. Times are Unix milliseconds (UTC).
CREATE TABLE attachments (
    id           TEXT PRIMARY KEY,
    message_id   TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    idx          INTEGER NOT NULL,
    name         TEXT NOT NULL,
    size         INTEGER NOT NULL CHECK (size > 0),
    content_type TEXT NOT NULL,
    requested    INTEGER NOT NULL,
    shared       INTEGER NOT NULL,
    note         TEXT NOT NULL DEFAULT '',
    drive_item   TEXT NOT NULL DEFAULT '',
    share_url    TEXT NOT NULL DEFAULT '',
    blob         TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    UNIQUE (message_id, idx)
) STRICT;
