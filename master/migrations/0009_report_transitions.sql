-- Reports follow every state a triggered build is saved with: the
-- reporters of a submit are known before its builds are inserted, and the
-- build's insert and each save queue their state in the same transaction.

-- Submits whose builds are watched, recorded before the builds exist.
CREATE TABLE watched_submits (
    submit_id  TEXT    PRIMARY KEY NOT NULL,
    source     TEXT    NOT NULL,
    reporters  TEXT    NOT NULL,  -- JSON list of reporter names
    created_at INTEGER NOT NULL
) STRICT;

-- The reporters of each watched build (JSON list), so a save queues its
-- state for them without reading the config.
ALTER TABLE watched_builds ADD COLUMN reporters TEXT NOT NULL DEFAULT '[]';
