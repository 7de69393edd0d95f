-- Recommendations: message templates, deal outcomes of followed messages, and recipients' time zones.
-- Times are Unix milliseconds (UTC). Send-time histograms are aggregated from messages, recipients and
-- events (see store/sqlite/recommend.go); the indexes below keep those reads indexed.
CREATE TABLE templates (
    id         TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    name       TEXT NOT NULL,
    subject    TEXT NOT NULL,
    html       TEXT NOT NULL,
    category   TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX templates_category ON templates (category, name, id);

-- One outcome per message; recording again replaces it.
CREATE TABLE outcomes (
    message_id  TEXT PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    outcome     TEXT NOT NULL CHECK (outcome IN ('WON', 'LOST')),
    recorded_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- A recipient's zone: from Graph mailbox settings ('mailbox') or entered ('profile').
CREATE TABLE recipient_profiles (
    email      TEXT PRIMARY KEY,
    domain     TEXT NOT NULL,
    zone       TEXT NOT NULL,
    source     TEXT NOT NULL CHECK (source IN ('mailbox', 'profile')),
    updated_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX recipient_profiles_domain ON recipient_profiles (domain, zone);

CREATE INDEX messages_template ON messages (template_id) WHERE template_id <> '';
