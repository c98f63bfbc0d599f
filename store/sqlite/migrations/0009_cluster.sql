-- 0009: several gateways on one store. Each session row names the gateway
-- holding it and that gateway's advertise address; each gateway renews a
-- lease; a kill for a session held by another gateway waits in
-- kill_requests until its holder takes it; host_presence says which
-- gateways hold a tunnel of which host. Rows from before it have
-- gateway '' (one gateway: the one that restarts owns them).
ALTER TABLE sessions ADD COLUMN gateway TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN gateway_advertise TEXT NOT NULL DEFAULT '';
CREATE INDEX sessions_gateway_state ON sessions(gateway, state);

CREATE TABLE gateway_leases (
	name       TEXT PRIMARY KEY,
	advertise  TEXT NOT NULL DEFAULT '',
	renewed_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
);

CREATE TABLE kill_requests (
	session_id   TEXT PRIMARY KEY,
	gateway      TEXT NOT NULL,
	by_person    TEXT NOT NULL,
	reason       TEXT NOT NULL DEFAULT '',
	requested_at INTEGER NOT NULL
);
CREATE INDEX kill_requests_gateway ON kill_requests(gateway);

CREATE TABLE host_presence (
	host      TEXT NOT NULL,
	gateway   TEXT NOT NULL,
	since     INTEGER NOT NULL,
	last_seen INTEGER NOT NULL,
	PRIMARY KEY (host, gateway)
);
CREATE INDEX host_presence_gateway ON host_presence(gateway);
