-- 0009: several gateways on one store, as SQLite's 0009. Each session row
-- names the gateway holding it and that gateway's advertise address; each
-- gateway renews a lease; a kill for a session held by another gateway
-- waits in kill_requests until its holder takes it; host_presence says
-- which gateways hold a tunnel of which host. Times are Unix nanoseconds.
ALTER TABLE sessions ADD COLUMN gateway TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN gateway_advertise TEXT NOT NULL DEFAULT '';
CREATE INDEX sessions_gateway_state ON sessions(gateway, state);

CREATE TABLE gateway_leases (
	name       TEXT PRIMARY KEY,
	advertise  TEXT NOT NULL DEFAULT '',
	renewed_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL
);

CREATE TABLE kill_requests (
	session_id   TEXT PRIMARY KEY,
	gateway      TEXT NOT NULL,
	by_person    TEXT NOT NULL,
	reason       TEXT NOT NULL DEFAULT '',
	requested_at BIGINT NOT NULL
);
CREATE INDEX kill_requests_gateway ON kill_requests(gateway);

CREATE TABLE host_presence (
	host      TEXT NOT NULL,
	gateway   TEXT NOT NULL,
	since     BIGINT NOT NULL,
	last_seen BIGINT NOT NULL,
	PRIMARY KEY (host, gateway)
);
CREATE INDEX host_presence_gateway ON host_presence(gateway);
