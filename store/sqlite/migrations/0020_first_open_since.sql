-- When a salesperson last switched first-open alerts back on (Unix milliseconds; 0: never off), so
-- that the sweep for lost first-open alerts leaves alone the opens that came while they were off.
ALTER TABLE alert_preferences ADD COLUMN first_open_since INTEGER NOT NULL DEFAULT 0;
