-- A message's events are found through event_index, which a background step fills in bulk
-- (store/sqlite/event_index.go), instead of through an index on the events table. Kept on the table,
-- that index made every batch of tracking events write a page of it for each message the batch
-- named: half the cost of a commit. Filled a few thousand events at a time, its pages are written
-- once per step. Events not indexed yet (seq above event_index_state.upto) are found by scanning the
-- end of the events table. An entry also holds what the per-message aggregates filter on (kind,
-- recipient, machine), so that they read no event rows.
CREATE TABLE event_index (
    message_id TEXT NOT NULL,
    at         INTEGER NOT NULL,
    id         TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    recipient  INTEGER NOT NULL,
    machine    INTEGER NOT NULL,
    PRIMARY KEY (message_id, at, id)
) STRICT, WITHOUT ROWID;
CREATE TABLE event_index_state (
    one  INTEGER PRIMARY KEY CHECK (one = 1),
    upto INTEGER NOT NULL
) STRICT;
INSERT INTO event_index SELECT message_id, at, id, seq, kind, recipient, machine FROM events;
INSERT INTO event_index_state VALUES (1, coalesce((SELECT max(seq) FROM events), 0));
DROP INDEX events_message_at;
-- Erasure and the retention purge delete events; their entries go with them. A relabel changes
-- machine, and its entry follows (an event not indexed yet is copied as it is when indexed).
CREATE TRIGGER events_unindex AFTER DELETE ON events BEGIN
    DELETE FROM event_index WHERE message_id = old.message_id AND at = old.at AND id = old.id;
END;
CREATE TRIGGER events_relabel AFTER UPDATE OF machine ON events BEGIN
    UPDATE event_index SET machine = new.machine WHERE message_id = old.message_id AND at = old.at AND id = old.id;
END;
