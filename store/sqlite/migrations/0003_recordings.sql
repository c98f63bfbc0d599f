-- 0003: each recording's size and SHA-256, taken when it is finalized.
ALTER TABLE sessions ADD COLUMN recording_size INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN recording_sha256 TEXT NOT NULL DEFAULT '';
