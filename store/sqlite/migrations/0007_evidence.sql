-- 0007: the audit hash chain, signed checkpoints of it, recording manifests.
-- prev and hash are hex SHA-256 (store.ChainHash); rows from before this
-- migration are chained when the store opens, in id order.
ALTER TABLE audit ADD COLUMN prev TEXT NOT NULL DEFAULT '';
ALTER TABLE audit ADD COLUMN hash TEXT NOT NULL DEFAULT '';

CREATE TABLE audit_checkpoints (
	seq       INTEGER PRIMARY KEY,
	head      TEXT NOT NULL,
	at        INTEGER NOT NULL,
	signature TEXT NOT NULL
);

CREATE TABLE manifests (
	session_id TEXT PRIMARY KEY,
	body       BLOB NOT NULL,
	created_at INTEGER NOT NULL
);
