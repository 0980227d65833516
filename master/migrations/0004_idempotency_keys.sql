-- Idempotent submits: what a submit with an Idempotency-Key created, so a
-- retry with the same key within 24 h returns it instead of submitting
-- again. Keys are scoped to the token that sent them.
CREATE TABLE idempotency_keys (
    scope          TEXT    NOT NULL,
    key            TEXT    NOT NULL,
    request_hash   TEXT    NOT NULL,
    submit_id      TEXT    NOT NULL,
    build_ids_json TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
) STRICT;

-- Expired keys are deleted by age.
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
