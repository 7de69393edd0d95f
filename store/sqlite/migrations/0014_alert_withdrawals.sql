-- An OPEN_WITHDRAWN alert takes back a FIRST_OPEN alert whose open later proved a machine's. The sweep
-- that finds those reads the recent first-open alerts by time.
ALTER TABLE alerts ADD COLUMN withdraws TEXT NOT NULL DEFAULT '';
ALTER TABLE alerts ADD COLUMN machine TEXT NOT NULL DEFAULT '';
CREATE INDEX alerts_first_open_at ON alerts (at) WHERE kind = 'FIRST_OPEN';
