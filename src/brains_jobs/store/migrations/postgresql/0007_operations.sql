-- What operators and applications need around jobs: resubmitted jobs point at their
-- original; usage totals; the version of the job type a job was enqueued under;
-- tracking jobs (worked on outside any worker, reporting within `track_ttl` seconds);
-- lifecycle callbacks not yet run; and named templates.
ALTER TABLE {{schema}}.jobs
    ADD COLUMN original_id      bigint,
    ADD COLUMN usage            jsonb,
    ADD COLUMN version          integer NOT NULL DEFAULT 1,
    ADD COLUMN tracked          boolean NOT NULL DEFAULT false,
    ADD COLUMN track_ttl        double precision,
    ADD COLUMN callback_pending boolean NOT NULL DEFAULT false;

CREATE INDEX jobs_callback_pending ON {{schema}}.jobs (id) WHERE callback_pending;

CREATE TABLE {{schema}}.templates (
    name       text        PRIMARY KEY,
    type       text        NOT NULL,
    input      json        NOT NULL,
    options    jsonb       NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Limited jobs by their first key: whether any ready job's key is free is one look-up
-- per key, not a scan of every queued job behind a saturated one.
CREATE INDEX jobs_limited_key ON {{schema}}.jobs ((limit_keys[1]), run_at)
    WHERE status = 'queued' AND crashes = 0 AND limited;
