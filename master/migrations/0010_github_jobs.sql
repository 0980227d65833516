-- GitHub Actions jobs the runner manager saw: the runner build launched
-- for each, the one that ran it, and its conclusion.
CREATE TABLE github_jobs (
    job_id         INTEGER PRIMARY KEY NOT NULL,
    repo           TEXT    NOT NULL,
    run_id         INTEGER NOT NULL,
    name           TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    conclusion     TEXT,
    launched_build INTEGER,
    ran_build      INTEGER,
    runner_name    TEXT,
    html_url       TEXT,
    updated_at     INTEGER NOT NULL
) STRICT;

CREATE INDEX github_jobs_by_launched ON github_jobs (launched_build);
CREATE INDEX github_jobs_by_ran ON github_jobs (ran_build);
