-- burst's initial schema. STRICT tables so a wrongly typed write fails
-- loudly instead of being stored and read back as corruption.

-- Small facts about this master, such as its stable id.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;

-- One row per build; the step specs are a JSON snapshot taken at submit time.
CREATE TABLE builds (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    submit_id   TEXT    NOT NULL,
    builder     TEXT    NOT NULL,
    cell_json   TEXT    NOT NULL,
    params_json TEXT    NOT NULL,
    labels_json TEXT    NOT NULL,
    steps_json  TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    reason      TEXT,
    retries     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    started_at  INTEGER,
    finished_at INTEGER
) STRICT;

-- Startup resumes queued and running builds.
CREATE INDEX builds_by_state ON builds (state);

CREATE TABLE attempts (
    build_id    INTEGER NOT NULL REFERENCES builds (id) ON DELETE CASCADE,
    number      INTEGER NOT NULL,
    worker_id   TEXT    NOT NULL,
    pool        TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    reason      TEXT,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    PRIMARY KEY (build_id, number)
) STRICT;

-- Step runs, and the log index: the log store derives a step's file from
-- (build_id, attempt, idx) and log_bytes says how much of it is persisted.
-- Steps hang off their attempt, so deleting a build cascades through both.
CREATE TABLE steps (
    build_id    INTEGER NOT NULL,
    attempt     INTEGER NOT NULL,
    idx         INTEGER NOT NULL,
    name        TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    exit_code   INTEGER,
    signal      INTEGER,
    error       TEXT,
    started_at  INTEGER,
    duration_ms INTEGER,
    log_bytes   INTEGER NOT NULL,
    PRIMARY KEY (build_id, attempt, idx),
    FOREIGN KEY (build_id, attempt) REFERENCES attempts (build_id, number) ON DELETE CASCADE
) STRICT;

-- The instance ledger: every worker burst ever launched, written before the
-- provider is called so nothing launched can be leaked.
CREATE TABLE instances (
    worker_id     TEXT PRIMARY KEY NOT NULL,
    pool          TEXT    NOT NULL,
    provider      TEXT    NOT NULL,
    provider_id   TEXT,
    state         TEXT    NOT NULL,
    details_json  TEXT    NOT NULL,
    error         TEXT,
    launched_at   INTEGER NOT NULL,
    connected_at  INTEGER,
    terminated_at INTEGER
) STRICT;

-- The reaper and startup reconciliation read the live rows.
CREATE INDEX instances_by_state ON instances (state);
