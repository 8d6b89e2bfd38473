-- Jobs, their events (the audit trail), and the triggers that write status events.
CREATE TABLE jobs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    type             TEXT    NOT NULL,
    queue            TEXT    NOT NULL,
    priority         INTEGER NOT NULL DEFAULT 0,
    status           TEXT    NOT NULL DEFAULT 'queued',
    input            TEXT    NOT NULL,
    output           TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    errors           TEXT    NOT NULL DEFAULT '[]',
    progress         REAL,
    progress_message TEXT,
    last_message     TEXT,
    unique_key       TEXT,
    tags             TEXT    NOT NULL DEFAULT '[]',
    metadata         TEXT    NOT NULL DEFAULT '{}',
    owner            TEXT,
    parent_id        INTEGER,
    worker_id        TEXT,
    lease_token      TEXT,
    lease_until      REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created_at       REAL    NOT NULL,
    run_at           REAL    NOT NULL,
    started_at       REAL,
    finished_at      REAL,
    updated_at       REAL    NOT NULL
);

CREATE INDEX jobs_ready ON jobs (priority DESC, run_at, id) WHERE status = 'queued';
CREATE INDEX jobs_scheduled ON jobs (run_at) WHERE status = 'queued';
CREATE INDEX jobs_leases ON jobs (lease_until) WHERE status = 'running';
CREATE INDEX jobs_status_type ON jobs (status, type);
CREATE UNIQUE INDEX jobs_unique_key ON jobs (unique_key) WHERE unique_key IS NOT NULL;

CREATE TABLE job_events (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id   INTEGER NOT NULL,
    job_type TEXT    NOT NULL,
    kind     TEXT    NOT NULL,
    status   TEXT,
    attempt  INTEGER NOT NULL DEFAULT 0,
    progress REAL,
    message  TEXT,
    data     TEXT,
    at       REAL    NOT NULL
);

CREATE INDEX job_events_job ON job_events (job_id, seq);

CREATE TRIGGER jobs_status_inserted AFTER INSERT ON jobs
BEGIN
    INSERT INTO job_events (job_id, job_type, kind, status, attempt, message, at)
    VALUES (NEW.id, NEW.type, 'status', NEW.status, NEW.attempts, NEW.last_message, NEW.updated_at);
END;

CREATE TRIGGER jobs_status_changed AFTER UPDATE OF status ON jobs
WHEN NEW.status IS NOT OLD.status
BEGIN
    INSERT INTO job_events (job_id, job_type, kind, status, attempt, message, at)
    VALUES (NEW.id, NEW.type, 'status', NEW.status, NEW.attempts, NEW.last_message, NEW.updated_at);
END;
