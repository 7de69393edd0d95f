-- Who may be followed: the organisation's settings, "Follow Email" preference histories, the admins'
-- audit log and bounce suppressions. Times are Unix milliseconds (UTC).

-- One row: the settings as JSON, so that a new setting needs no migration.
CREATE TABLE consent_settings (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    body       TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

-- Every preference ever set; the row with the highest seq for a target is the one in force.
CREATE TABLE follow_preferences (
    seq        INTEGER PRIMARY KEY,
    target     TEXT NOT NULL, -- an address, a domain, or sha256:<hex> for a forgotten address
    preference TEXT NOT NULL CHECK (preference IN ('ALLOW', 'DO_NOT_ALLOW')),
    at         INTEGER NOT NULL,
    set_by     TEXT NOT NULL,
    source     TEXT NOT NULL,
    note       TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX follow_preferences_target ON follow_preferences (target, seq DESC);

CREATE TABLE audit_log (
    seq          INTEGER PRIMARY KEY,
    at           INTEGER NOT NULL,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    target       TEXT NOT NULL,
    before_value TEXT NOT NULL,
    after_value  TEXT NOT NULL
) STRICT;
CREATE INDEX audit_log_target ON audit_log (target, seq DESC);

CREATE TABLE suppressions (
    email  TEXT PRIMARY KEY,
    until  INTEGER, -- NULL: until lifted
    reason TEXT NOT NULL,
    at     INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- The retention purge deletes the oldest events first.
CREATE INDEX events_at ON events (at);
