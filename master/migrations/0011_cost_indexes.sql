-- Cost attribution and budgets (master/src/cost): the attempts that ran on
-- a worker, and the ledger rows that ran in a window.
CREATE INDEX attempts_by_worker ON attempts (worker_id);
CREATE INDEX instances_by_terminated ON instances (terminated_at);
