-- The builds list filters by submitter over the whole history (newest
-- first, paged by id): without this index a rare submitter scans every
-- build.
CREATE INDEX builds_by_submitter ON builds (submitted_by, id);
