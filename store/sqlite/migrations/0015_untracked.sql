-- Recipients who withdrew consent (DO_NOT_ALLOW) after a message was sent to them: their events of
-- that message are no longer recorded. recipient -1 stops a shared render's events, which cannot be
-- told apart by recipient.
CREATE TABLE untracked (
    message_id TEXT NOT NULL,
    recipient  INTEGER NOT NULL,
    since      INTEGER NOT NULL,
    PRIMARY KEY (message_id, recipient)
) STRICT, WITHOUT ROWID;
-- A domain's DO_NOT_ALLOW finds the mail sent to its addresses through this, not a scan.
CREATE INDEX recipients_domain ON recipients (substr(email, instr(email, '@') + 1));
