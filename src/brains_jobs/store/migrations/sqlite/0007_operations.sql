-- What operators and applications need around jobs: resubmitted jobs point at their
-- original; usage totals; the version of the job type a job was enqueued under;
-- tracking jobs (worked on outside any worker, reporting within `track_ttl` seconds);
-- lifecycle callbacks not yet run; and named templates.
ALTER TABLE jobs ADD COLUMN original_id INTEGER;
ALTER TABLE jobs ADD COLUMN usage TEXT;
ALTER TABLE jobs ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE jobs ADD COLUMN tracked INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN track_ttl REAL;
ALTER TABLE jobs ADD COLUMN callback_pending INTEGER NOT NULL DEFAULT 0;

CREATE INDEX jobs_callback_pending ON jobs (id) WHERE callback_pending;

CREATE TABLE templates (
    name       TEXT PRIMARY KEY,
    type       TEXT NOT NULL,
    input      TEXT NOT NULL,
    options    TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);

-- Limited jobs by their first key: whether any ready job's key is free is one look-up
-- per key, not a scan of every queued job behind a saturated one.
CREATE INDEX jobs_limited_key ON jobs (limit_keys ->> 0, run_at)
    WHERE status = 'queued' AND crashes = 0 AND limited;
