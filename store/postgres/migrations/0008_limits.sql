-- 0008: the abuse limits' counters (auth's Counters), so that every
-- gateway on the store counts together and a restart forgets nothing.
-- A row is one name in one book: a fixed window of events (source
-- attempts, mails) or a run of failures with its lockout. expires is when
-- the row stops mattering; rows past it are swept.
CREATE TABLE limits (
	book         TEXT NOT NULL,
	name         TEXT NOT NULL,
	n            INTEGER NOT NULL DEFAULT 0,
	lockouts     INTEGER NOT NULL DEFAULT 0,
	window_start BIGINT NOT NULL DEFAULT 0,
	last_failure BIGINT NOT NULL DEFAULT 0,
	locked_until BIGINT NOT NULL DEFAULT 0,
	expires      BIGINT NOT NULL,
	PRIMARY KEY (book, name)
);
CREATE INDEX limits_expires ON limits(expires);
