-- API tokens and who submitted each build. Only a token's SHA-256 is kept:
-- a copy of the database does not let anyone in.

ALTER TABLE builds ADD COLUMN submitted_by TEXT;

CREATE TABLE api_tokens (
    name       TEXT PRIMARY KEY NOT NULL,
    -- Lowercase hex SHA-256 of the token.
    hash       TEXT    NOT NULL UNIQUE,
    role       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT
) STRICT;
