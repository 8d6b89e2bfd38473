-- Crash accounting, actors in the audit trail, the workers registry, leadership, and the
-- database's own name.

-- `started`: the handler of the current attempt is known to have started (the worker
-- said so). `mark_start`: the next claimer must record the start before running the
-- handler (the job was held by a worker that died before saying). `crashes`: how many
-- workers died while running it; such a job runs alone from then on.
ALTER TABLE jobs ADD COLUMN started INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN mark_start INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN crashes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN last_actor TEXT;
ALTER TABLE job_events ADD COLUMN actor TEXT;

DROP INDEX jobs_ready;
CREATE INDEX jobs_ready ON jobs (priority DESC, run_at, id) WHERE status = 'queued' AND crashes = 0;
CREATE INDEX jobs_isolated ON jobs (priority DESC, run_at, id) WHERE status = 'queued' AND crashes > 0;

DROP TRIGGER jobs_status_inserted;
DROP TRIGGER jobs_status_changed;

CREATE TRIGGER jobs_status_inserted AFTER INSERT ON jobs
BEGIN
    INSERT INTO job_events (job_id, job_type, kind, status, attempt, message, actor, at)
    VALUES (NEW.id, NEW.type, 'status', NEW.status, NEW.attempts, NEW.last_message,
            NEW.last_actor, NEW.updated_at);
END;

CREATE TRIGGER jobs_status_changed AFTER UPDATE OF status ON jobs
WHEN NEW.status IS NOT OLD.status
BEGIN
    INSERT INTO job_events (job_id, job_type, kind, status, attempt, message, actor, at)
    VALUES (NEW.id, NEW.type, 'status', NEW.status, NEW.attempts, NEW.last_message,
            NEW.last_actor, NEW.updated_at);
END;

CREATE TABLE brains_jobs_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

INSERT INTO brains_jobs_meta (key, value) VALUES ('store_id', lower(hex(randomblob(8))));

CREATE TABLE workers (
    id           TEXT    PRIMARY KEY,
    host         TEXT    NOT NULL,
    pid          INTEGER NOT NULL,
    queues       TEXT    NOT NULL DEFAULT '[]',
    types        TEXT    NOT NULL DEFAULT '[]',
    concurrency  INTEGER NOT NULL,
    version      TEXT,
    started_at   REAL    NOT NULL,
    heartbeat_at REAL    NOT NULL,
    running      INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE leaders (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    since      REAL NOT NULL,
    expires_at REAL NOT NULL
);

-- The pruner's walk: finished jobs by status, oldest first.
CREATE INDEX jobs_finished ON jobs (status, finished_at) WHERE finished_at IS NOT NULL;
