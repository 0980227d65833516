-- Builds that start from code (triggers) and report back (reporters).

-- Webhook deliveries already acted on, so a redelivery starts nothing.
CREATE TABLE hook_deliveries (
    source      TEXT    NOT NULL,
    delivery    TEXT    NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (source, delivery)
) STRICT;
CREATE INDEX hook_deliveries_by_age ON hook_deliveries (received_at);

-- The revision a git poller last saw per branch: a restart compares
-- against these instead of triggering again.
CREATE TABLE source_heads (
    source   TEXT    NOT NULL,
    branch   TEXT    NOT NULL,
    revision TEXT    NOT NULL,
    seen_at  INTEGER NOT NULL,
    PRIMARY KEY (source, branch)
) STRICT;

-- Builds a source started, and the state last queued for their reporters.
CREATE TABLE watched_builds (
    build_id   INTEGER PRIMARY KEY REFERENCES builds (id) ON DELETE CASCADE,
    source     TEXT    NOT NULL,
    last_state TEXT
) STRICT;

-- The outbox: one row per status a reporter must deliver. Rows survive a
-- crash; delivered ones stay as the build's report history.
CREATE TABLE report_outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    reporter     TEXT    NOT NULL,
    build_id     INTEGER NOT NULL REFERENCES builds (id) ON DELETE CASCADE,
    state        TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      INTEGER NOT NULL,
    delivered_at INTEGER,
    last_error   TEXT,
    gave_up      INTEGER NOT NULL DEFAULT 0,
    UNIQUE (reporter, build_id, state)
) STRICT;
CREATE INDEX report_outbox_due ON report_outbox (next_at) WHERE delivered_at IS NULL AND gave_up = 0;
CREATE INDEX report_outbox_by_build ON report_outbox (build_id);

-- Each schedule's last run, so a restart catches up at most once and
-- only_if_changed compares against the head built last.
CREATE TABLE schedule_runs (
    name     TEXT    PRIMARY KEY NOT NULL,
    ran_at   INTEGER NOT NULL,
    revision TEXT
) STRICT;
