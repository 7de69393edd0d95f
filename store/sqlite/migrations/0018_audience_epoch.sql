-- Every deletion from audience (a relabel passing no claim on, an erasure) moves audience_epoch on.
-- RecordEvents remembers the keys it has seen stored and skips claiming them again while the epoch
-- stands still (store/sqlite/claimed.go): a claim that can only be ignored costs a lookup per key.
CREATE TABLE audience_epoch (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    n   INTEGER NOT NULL
) STRICT;
INSERT INTO audience_epoch VALUES (1, 0);
CREATE TRIGGER audience_deleted AFTER DELETE ON audience BEGIN
    UPDATE audience_epoch SET n = n + 1;
END;
