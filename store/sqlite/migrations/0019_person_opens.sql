-- The prefetch sweep reads a person's opens in time order through events_at instead of an index of
-- their own: that index cost every batch of tracking events about three pages of the write-ahead log
-- (the load tool's batches), for a sweep that runs every few seconds over the opens since its cursor.
DROP INDEX events_person_opens;
