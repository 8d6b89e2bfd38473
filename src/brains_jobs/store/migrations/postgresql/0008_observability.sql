-- Metrics and tracing: the trace context (W3C `traceparent`) a job was enqueued under,
-- written only with tracing on; and the one-row snapshot of the queues that the leader
-- takes every interval, which every metrics scrape reads instead of counting jobs.
ALTER TABLE {{schema}}.jobs ADD COLUMN trace text;

CREATE TABLE {{schema}}.metrics_snapshot (
    name     text        PRIMARY KEY,
    taken_at timestamptz NOT NULL DEFAULT now(),
    data     jsonb       NOT NULL
);
