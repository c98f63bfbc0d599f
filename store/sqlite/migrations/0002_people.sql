-- 0002: people, their keys, teams (with the Rapid Response switch), team
-- members and the hosts each team reaches; host labels and passphrase
-- verifiers.
CREATE TABLE people (
	name          TEXT PRIMARY KEY,
	email         TEXT NOT NULL DEFAULT '',
	role          TEXT NOT NULL DEFAULT 'standard',
	password_hash TEXT NOT NULL DEFAULT '',
	totp_secret   TEXT NOT NULL DEFAULT '',
	created_at    INTEGER NOT NULL
);

CREATE TABLE person_keys (
	fingerprint    TEXT PRIMARY KEY,
	person         TEXT NOT NULL REFERENCES people(name) ON DELETE CASCADE,
	authorized_key TEXT NOT NULL
);
CREATE INDEX person_keys_person ON person_keys(person);

CREATE TABLE teams (
	name           TEXT PRIMARY KEY,
	rapid_response INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE team_members (
	team   TEXT NOT NULL REFERENCES teams(name) ON DELETE CASCADE,
	person TEXT NOT NULL REFERENCES people(name) ON DELETE CASCADE,
	PRIMARY KEY (team, person)
);

-- A team reaches a host by name, every host carrying a label ("label:K=V"),
-- or every host ("*").
CREATE TABLE team_hosts (
	team    TEXT NOT NULL REFERENCES teams(name) ON DELETE CASCADE,
	pattern TEXT NOT NULL,
	PRIMARY KEY (team, pattern)
);

ALTER TABLE hosts ADD COLUMN labels TEXT NOT NULL DEFAULT '';
ALTER TABLE hosts ADD COLUMN passphrase_verifier TEXT NOT NULL DEFAULT '';
