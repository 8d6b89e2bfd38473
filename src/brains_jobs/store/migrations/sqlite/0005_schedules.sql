-- Recurring jobs. A schedule's timing is a cron expression in a time zone (`kind`
-- 'cron') or an interval counted from an anchor (`kind` 'every'); each tick enqueues one
-- job of `job_type` with `input` and the options beside it. `next_run_at` is the first
-- tick not decided yet; `version` fences the scheduler's decisions (see
-- `brains_jobs.store.schedules`). `source` is 'runtime' or 'definition' (`job:<type>`).
CREATE TABLE schedules (
    name             TEXT    PRIMARY KEY,
    job_type         TEXT    NOT NULL,
    kind             TEXT    NOT NULL CHECK (kind IN ('cron', 'every')),
    expr             TEXT,
    timezone         TEXT    NOT NULL DEFAULT 'UTC',
    interval_seconds INTEGER,
    anchor           REAL,
    missed           TEXT    NOT NULL DEFAULT 'latest' CHECK (missed IN ('skip', 'latest', 'all')),
    grace            REAL    NOT NULL DEFAULT 60,
    queue            TEXT    NOT NULL,
    priority         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    input            TEXT    NOT NULL,
    tags             TEXT    NOT NULL DEFAULT '[]',
    metadata         TEXT    NOT NULL DEFAULT '{}',
    owner            TEXT,
    source           TEXT    NOT NULL DEFAULT 'runtime',
    paused           INTEGER NOT NULL DEFAULT 0,
    next_run_at      REAL,
    last_run_at      REAL,
    last_job_id      INTEGER,
    version          INTEGER NOT NULL DEFAULT 1,
    created_at       REAL    NOT NULL,
    updated_at       REAL    NOT NULL
);

CREATE INDEX schedules_due ON schedules (next_run_at) WHERE next_run_at IS NOT NULL;

-- What became of every tick: 'enqueued' (with its job), 'skipped' or 'missed', and why.
-- One row per schedule and tick: a tick decided twice is recorded (and run) once.
CREATE TABLE schedule_ticks (
    schedule    TEXT    NOT NULL,
    tick        REAL    NOT NULL,
    outcome     TEXT    NOT NULL CHECK (outcome IN ('enqueued', 'skipped', 'missed')),
    job_id      INTEGER,
    detail      TEXT,
    recorded_at REAL    NOT NULL,
    PRIMARY KEY (schedule, tick)
);
