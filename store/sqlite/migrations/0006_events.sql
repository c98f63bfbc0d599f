-- 0006: security events (Falco, Alertmanager), the teams mailed about
-- them, and the event a session was opened from.
CREATE TABLE events (
	id          TEXT PRIMARY KEY,
	source      TEXT NOT NULL,
	rule        TEXT NOT NULL,
	priority    INTEGER NOT NULL,
	at          INTEGER NOT NULL,
	host        TEXT NOT NULL DEFAULT '',
	source_host TEXT NOT NULL DEFAULT '',
	summary     TEXT NOT NULL DEFAULT '',
	raw         BLOB,
	dedup_key   TEXT NOT NULL UNIQUE,
	received_at INTEGER NOT NULL,
	status      TEXT NOT NULL,
	status_by   TEXT NOT NULL DEFAULT '',
	status_note TEXT NOT NULL DEFAULT '',
	status_at   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX events_at ON events(at);
CREATE INDEX events_host_at ON events(host, at);

CREATE TABLE team_event_subscriptions (
	team         TEXT PRIMARY KEY REFERENCES teams(name) ON DELETE CASCADE,
	min_priority TEXT NOT NULL
);

ALTER TABLE sessions ADD COLUMN event_id TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN event_rule TEXT NOT NULL DEFAULT '';
CREATE INDEX sessions_event ON sessions(event_id) WHERE event_id != '';
