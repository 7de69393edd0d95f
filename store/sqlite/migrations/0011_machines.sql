-- Machine labels: the prefetch sweep reads, oldest first, the opens still labelled a plain person's.
-- Partial, so it holds only those rows and costs the tracking path's inserts little.
CREATE INDEX events_person_opens ON events (at, id) WHERE kind = 'OPENED' AND machine = 0 AND reason = '';
