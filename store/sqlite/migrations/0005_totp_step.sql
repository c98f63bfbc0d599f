-- 0005: the last authenticator time step accepted from each person, so
-- that a TOTP code is used once: a code whose step is not later is refused.
ALTER TABLE people ADD COLUMN totp_last_step INTEGER NOT NULL DEFAULT 0;
