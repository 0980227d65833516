-- SHA-256 (hex) of the resume token a worker was last given, and of the one
-- it presented to get it (still valid until the new one is used: the master
-- may have died before its Welcome left). A restarted master re-admits the
-- workers of its ledger with these instead of terminating them.
ALTER TABLE instances ADD COLUMN resume_hash TEXT;
ALTER TABLE instances ADD COLUMN resume_prev_hash TEXT;
