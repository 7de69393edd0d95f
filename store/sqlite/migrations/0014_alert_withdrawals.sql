-- An ALERT_WITHDRAWN alert takes back an alert whose event later proved a machine's. The sweep that
-- finds those reads the recent alerts about opens, and about clicks and attachment opens, by time.
ALTER TABLE alerts ADD COLUMN withdraws TEXT NOT NULL DEFAULT '';
ALTER TABLE alerts ADD COLUMN machine TEXT NOT NULL DEFAULT '';
CREATE INDEX alerts_first_open_at ON alerts (at) WHERE kind = 'FIRST_OPEN';
CREATE INDEX alerts_click_at ON alerts (at) WHERE kind IN ('LINK_CLICKED', 'ATTACHMENT_OPENED');
