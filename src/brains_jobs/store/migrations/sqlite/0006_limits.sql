-- Limits: a job of a limited type carries its keys (a JSON array) and is claimed apart,
-- so that jobs without limits keep the plain claim; each key has its settings and state.
ALTER TABLE jobs ADD COLUMN limit_keys TEXT;
ALTER TABLE jobs ADD COLUMN limited INTEGER NOT NULL DEFAULT 0;

DROP INDEX jobs_ready;
CREATE INDEX jobs_ready ON jobs (priority DESC, run_at, id)
    WHERE status = 'queued' AND crashes = 0 AND NOT limited;
CREATE INDEX jobs_limited ON jobs (priority DESC, run_at, id)
    WHERE status = 'queued' AND crashes = 0 AND limited;
CREATE INDEX jobs_limited_running ON jobs (id) WHERE status = 'running' AND limited;

-- `tat`: the theoretical arrival time of the next start at the key's rate (GCRA);
-- `blocked_until`: a handler was throttled; times in epoch seconds.
CREATE TABLE limit_keys (
    key           TEXT    PRIMARY KEY,
    concurrency   INTEGER,
    rate          INTEGER,
    per           REAL,
    burst         INTEGER NOT NULL DEFAULT 1,
    tat           REAL    NOT NULL DEFAULT 0,
    blocked_until REAL    NOT NULL DEFAULT 0
);
