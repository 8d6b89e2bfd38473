-- A unique key is held while its job waits, is queued or runs (or, with `unique_keep`,
-- until the job is pruned): the unique index covers only those rows, so a finished job
-- lets its key go by leaving the index, without a write of its own.
ALTER TABLE jobs ADD COLUMN unique_keep INTEGER NOT NULL DEFAULT 0;

DROP INDEX jobs_unique_key;
CREATE UNIQUE INDEX jobs_unique_key ON jobs (unique_key)
    WHERE unique_key IS NOT NULL AND (status IN ('waiting', 'queued', 'running') OR unique_keep);
