-- The grid walks each builder's newest builds: without this index every
-- grid read grouped the whole builds table.
CREATE INDEX builds_by_builder ON builds (builder, id);
