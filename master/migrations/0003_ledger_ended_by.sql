-- Who settled a ledger row and how ("reaped at start by master m-…"), so a
-- row that ends `gone` says who found the worker and terminated it.
ALTER TABLE instances ADD COLUMN ended_by TEXT;
