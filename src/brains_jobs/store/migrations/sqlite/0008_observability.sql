-- Metrics and tracing: the trace context (W3C `traceparent`) a job was enqueued under,
-- written only with tracing on; and the one-row snapshot of the queues that the leader
-- takes every interval, which every metrics scrape reads instead of counting jobs.
ALTER TABLE jobs ADD COLUMN trace TEXT;

CREATE TABLE metrics_snapshot (
    name     TEXT PRIMARY KEY,
    taken_at REAL NOT NULL,
    data     TEXT NOT NULL
);
