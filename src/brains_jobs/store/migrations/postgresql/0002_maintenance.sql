-- Crash accounting, actors in the audit trail, the workers registry, leadership, and the
-- database's own name.

-- `started`: the handler of the current attempt is known to have started (the worker
-- said so). `mark_start`: the next claimer must record the start before running the
-- handler (the job was held by a worker that died before saying). `crashes`: how many
-- workers died while running it; such a job runs alone from then on.
ALTER TABLE {{schema}}.jobs
    ADD COLUMN started    boolean NOT NULL DEFAULT false,
    ADD COLUMN mark_start boolean NOT NULL DEFAULT false,
    ADD COLUMN crashes    integer NOT NULL DEFAULT 0,
    ADD COLUMN last_actor text;
ALTER TABLE {{schema}}.job_events ADD COLUMN actor text;
ALTER TABLE {{schema}}.jobs DROP CONSTRAINT jobs_status_check;
ALTER TABLE {{schema}}.jobs ADD CONSTRAINT jobs_status_check CHECK (status IN
    ('waiting', 'queued', 'running', 'succeeded', 'failed', 'cancelled', 'skipped'));

DROP INDEX {{schema}}.jobs_ready;
CREATE INDEX jobs_ready ON {{schema}}.jobs (priority DESC, run_at, id)
    WHERE status = 'queued' AND crashes = 0;
CREATE INDEX jobs_isolated ON {{schema}}.jobs (priority DESC, run_at, id)
    WHERE status = 'queued' AND crashes > 0;

CREATE TABLE {{schema}}.brains_jobs_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);

INSERT INTO {{schema}}.brains_jobs_meta (key, value)
VALUES ('store_id', substr(md5(random()::text || clock_timestamp()::text), 1, 16));

CREATE TABLE {{schema}}.workers (
    id           text        PRIMARY KEY,
    host         text        NOT NULL,
    pid          integer     NOT NULL,
    queues       jsonb       NOT NULL DEFAULT '[]',
    types        jsonb       NOT NULL DEFAULT '[]',
    concurrency  integer     NOT NULL,
    version      text,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    running      integer     NOT NULL DEFAULT 0
);

-- Who leads is decided by an advisory lock held on the leader's own connection (it
-- dies with the process); this row only says who holds it, for `health`.
CREATE TABLE {{schema}}.leaders (
    name       text        PRIMARY KEY,
    holder     text        NOT NULL,
    since      timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);

-- The pruner's walk: finished jobs by status, oldest first.
CREATE INDEX jobs_finished ON {{schema}}.jobs (status, finished_at)
    WHERE finished_at IS NOT NULL;
