-- 0001: hosts, agent keys, enrollment tokens, sessions, audit.
CREATE TABLE hosts (
	name       TEXT PRIMARY KEY,
	agent_key  TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	last_seen  INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE enroll_tokens (
	id         INTEGER PRIMARY KEY,
	host       TEXT NOT NULL REFERENCES hosts(name) ON DELETE CASCADE,
	token_hash BLOB NOT NULL,
	expires_at INTEGER NOT NULL,
	used_at    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX enroll_tokens_host ON enroll_tokens(host);

CREATE TABLE sessions (
	id          TEXT PRIMARY KEY,
	person      TEXT NOT NULL,
	team        TEXT NOT NULL DEFAULT '',
	host        TEXT NOT NULL,
	command     TEXT NOT NULL DEFAULT '',
	pty         INTEGER NOT NULL DEFAULT 0,
	source      TEXT NOT NULL DEFAULT '',
	state       TEXT NOT NULL,
	started_at  INTEGER NOT NULL,
	ended_at    INTEGER NOT NULL DEFAULT 0,
	bytes_in    INTEGER NOT NULL DEFAULT 0,
	bytes_out   INTEGER NOT NULL DEFAULT 0,
	exit_status INTEGER,
	end_reason  TEXT NOT NULL DEFAULT '',
	killed_by   TEXT NOT NULL DEFAULT '',
	recording   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_state_started ON sessions(state, started_at);

CREATE TABLE audit (
	id         INTEGER PRIMARY KEY,
	at         INTEGER NOT NULL,
	actor      TEXT NOT NULL DEFAULT '',
	action     TEXT NOT NULL,
	target     TEXT NOT NULL DEFAULT '',
	outcome    TEXT NOT NULL DEFAULT '',
	detail     TEXT NOT NULL DEFAULT '',
	source     TEXT NOT NULL DEFAULT '',
	session_id TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_at ON audit(at);
