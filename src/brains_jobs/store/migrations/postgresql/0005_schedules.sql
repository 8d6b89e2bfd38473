-- Recurring jobs. A schedule's timing is a cron expression in a time zone (`kind`
-- 'cron') or an interval counted from an anchor (`kind` 'every'); each tick enqueues one
-- job of `job_type` with `input` and the options beside it. `next_run_at` is the first
-- tick not decided yet; `version` fences the scheduler's decisions (see
-- `brains_jobs.store.schedules`). `source` is 'runtime' or 'definition' (`job:<type>`).
CREATE TABLE {{schema}}.schedules (
    name             text        PRIMARY KEY,
    job_type         text        NOT NULL,
    kind             text        NOT NULL CHECK (kind IN ('cron', 'every')),
    expr             text,
    timezone         text        NOT NULL DEFAULT 'UTC',
    interval_seconds bigint,
    anchor           timestamptz,
    missed           text        NOT NULL DEFAULT 'latest'
                                 CHECK (missed IN ('skip', 'latest', 'all')),
    grace            float8      NOT NULL DEFAULT 60,
    queue            text        NOT NULL,
    priority         integer     NOT NULL DEFAULT 0,
    max_attempts     integer     NOT NULL,
    input            text        NOT NULL,
    tags             text        NOT NULL DEFAULT '[]',
    metadata         text        NOT NULL DEFAULT '{}',
    owner            text,
    source           text        NOT NULL DEFAULT 'runtime',
    paused           boolean     NOT NULL DEFAULT false,
    next_run_at      timestamptz,
    last_run_at      timestamptz,
    last_job_id      bigint,
    version          bigint      NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX schedules_due ON {{schema}}.schedules (next_run_at)
    WHERE next_run_at IS NOT NULL;

-- What became of every tick: 'enqueued' (with its job), 'skipped' or 'missed', and why.
-- One row per schedule and tick: a tick decided twice is recorded (and run) once.
CREATE TABLE {{schema}}.schedule_ticks (
    schedule    text        NOT NULL,
    tick        timestamptz NOT NULL,
    outcome     text        NOT NULL CHECK (outcome IN ('enqueued', 'skipped', 'missed')),
    job_id      bigint,
    detail      text,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schedule, tick)
);
