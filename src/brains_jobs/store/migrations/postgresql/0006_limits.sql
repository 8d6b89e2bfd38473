-- Limits: a job of a limited type carries its keys and is claimed apart, so that jobs
-- without limits keep the plain claim; each key has its settings and state.
ALTER TABLE {{schema}}.jobs
    ADD COLUMN limit_keys text[],
    ADD COLUMN limited    boolean NOT NULL DEFAULT false;

DROP INDEX {{schema}}.jobs_ready;
CREATE INDEX jobs_ready ON {{schema}}.jobs (priority DESC, run_at, id)
    WHERE status = 'queued' AND crashes = 0 AND NOT limited;
CREATE INDEX jobs_limited ON {{schema}}.jobs (priority DESC, run_at, id)
    WHERE status = 'queued' AND crashes = 0 AND limited;
CREATE INDEX jobs_limited_running ON {{schema}}.jobs (id)
    WHERE status = 'running' AND limited;

-- `tat`: the theoretical arrival time of the next start at the key's rate (GCRA);
-- `blocked_until`: a handler was throttled; times in epoch seconds.
CREATE TABLE {{schema}}.limit_keys (
    key           text             PRIMARY KEY,
    concurrency   integer,
    rate          integer,
    per           double precision,
    burst         integer          NOT NULL DEFAULT 1,
    tat           double precision NOT NULL DEFAULT 0,
    blocked_until double precision NOT NULL DEFAULT 0
);
