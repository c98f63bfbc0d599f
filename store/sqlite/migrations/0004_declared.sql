-- 0004: which people, teams and hosts the gateway's configuration file
-- declares, so that one the file no longer names is removed at the next
-- start rather than left able to log in.
ALTER TABLE people ADD COLUMN declared INTEGER NOT NULL DEFAULT 0;
ALTER TABLE teams ADD COLUMN declared INTEGER NOT NULL DEFAULT 0;
ALTER TABLE hosts ADD COLUMN declared INTEGER NOT NULL DEFAULT 0;
