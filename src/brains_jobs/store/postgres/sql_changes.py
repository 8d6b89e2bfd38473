"""The PostgreSQL store's statements that change jobs beside the worker's hot path:
decided changes (`Change`), what a finished batch adds (usage, callbacks due), and what
new resubmitted or tracking jobs start with.

`{{schema}}` is replaced by the quoted schema name, as in `sql`.
"""

from __future__ import annotations

# The sum, key by key, of a job's usage and the numbers of a JSON object.
_ADD_USAGE = """(SELECT jsonb_object_agg(key, total)
              FROM (SELECT key, sum(value::numeric) AS total
                      FROM (SELECT key, value FROM jsonb_each_text(coalesce(j.usage, '{{}}'))
                            UNION ALL
                            SELECT key, value FROM jsonb_each_text({usage}::jsonb)) AS u
                     GROUP BY key) AS s)"""

# A `Change` per element of the arrays (see `store._common.change_row`); NULL leaves a
# column as it is. Status events for changed statuses; for the others that name an
# actor or a message, `action` events (`progress` events when they report progress).
APPLY = """
WITH c AS (
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[],
                         $6::text[], $7::text[], $8::float8[], $9::text[], $10::int[],
                         $11::int[], $12::int[], $13::bool[], $14::bool[], $15::text[],
                         $16::int[], $17::bool[], $18::bool[], $19::bool[], $20::text[],
                         $21::int[], $22::float8[], $23::float8[], $24::float8[],
                         $25::text[], $26::text[], $27::bool[])
           WITH ORDINALITY AS c(id, expect, status, token, message, actor, error, run_in,
                                output, attempts_delta, max_attempts, crashes_delta,
                                mark_start, request_cancel, queue, priority, final,
                                unchanged, action, input, version, progress, lease_for,
                                track_ttl, usage, new_token, callback, ord)
), upd AS (
    UPDATE {{schema}}.jobs AS j
       SET status = c.status,
           last_message = c.message,
           last_actor = c.actor,
           errors = CASE WHEN c.error IS NULL THEN j.errors
                         ELSE j.errors || jsonb_build_array(c.error::jsonb) END,
           run_at = CASE WHEN c.run_in IS NULL THEN j.run_at
                         ELSE now() + make_interval(secs => c.run_in) END,
           output = CASE WHEN c.status = 'succeeded' THEN c.output::json
                         WHEN c.status IN ('queued', 'running') THEN NULL
                         ELSE j.output END,
           progress = CASE WHEN c.status = 'succeeded' THEN 1.0::float8
                           ELSE coalesce(c.progress, j.progress) END,
           progress_message = CASE WHEN c.progress IS NOT NULL THEN c.message
                                   ELSE j.progress_message END,
           attempts = j.attempts + c.attempts_delta,
           max_attempts = coalesce(c.max_attempts, j.max_attempts),
           crashes = j.crashes + c.crashes_delta,
           mark_start = coalesce(c.mark_start, j.mark_start),
           cancel_requested = CASE WHEN c.status = 'running'
                                   THEN coalesce(c.request_cancel, j.cancel_requested)
                                   ELSE false END,
           queue = coalesce(c.queue, j.queue),
           priority = coalesce(c.priority, j.priority),
           input = coalesce(c.input::json, j.input),
           version = coalesce(c.version, j.version),
           tracked = j.tracked OR c.track_ttl IS NOT NULL,
           track_ttl = coalesce(c.track_ttl, j.track_ttl),
           usage = CASE WHEN c.usage IS NULL THEN j.usage ELSE {merge} END,
           callback_pending = j.callback_pending OR c.callback,
           finished_at = CASE WHEN c.final THEN now()
                              WHEN c.status = 'running' THEN j.finished_at END,
           lease_token = CASE WHEN c.status = 'running'
                              THEN coalesce(c.new_token, j.lease_token) END,
           lease_until = CASE WHEN c.lease_for IS NOT NULL
                              THEN now() + make_interval(secs => c.lease_for)
                              WHEN c.status = 'running' THEN j.lease_until END,
           worker_id = CASE WHEN c.status = 'queued' THEN NULL ELSE j.worker_id END,
           started = CASE WHEN c.status = 'running' THEN j.started ELSE false END,
           updated_at = now()
      FROM c
     WHERE j.id = c.id AND j.status = ANY(string_to_array(c.expect, ','))
       AND (c.token IS NULL OR j.lease_token = c.token)
    RETURNING j.id, j.type, j.status, j.attempts, c.message, c.actor, c.ord, c.unchanged,
              c.action, j.has_children, c.progress
), ev AS (
    INSERT INTO {{schema}}.job_events (job_id, job_type, kind, status, attempt, progress,
                                       message, actor, at)
    SELECT id, type,
           CASE WHEN NOT unchanged THEN 'status'
                WHEN progress IS NOT NULL THEN 'progress' ELSE 'action' END,
           status, attempts, progress, message, actor, now()
      FROM upd
     WHERE (NOT unchanged OR action) AND (SELECT {{schema}}.events_fence())
     ORDER BY id
)
SELECT id, has_children, status FROM upd ORDER BY ord
""".replace("{merge}", _ADD_USAGE.format(usage="c.usage"))

# What the jobs of a finished batch add: usage, a flag while a callback is due, and an
# input upgraded to a newer version.
FINISHED_EXTRAS = """
UPDATE {{schema}}.jobs AS j
   SET usage = CASE WHEN x.usage IS NULL THEN j.usage ELSE {merge} END,
       callback_pending = x.callback,
       input = coalesce(x.input::json, j.input),
       version = coalesce(x.version, j.version)
  FROM unnest($1::bigint[], $2::text[], $3::bool[], $4::text[], $5::int[])
       AS x(id, usage, callback, input, version)
 WHERE j.id = x.id
""".replace("{merge}", _ADD_USAGE.format(usage="x.usage"))

# New jobs that resubmit another one, and tracking jobs, which start `running` with the
# time their reporter has to report as their lease.
SETTLE_NEW = """
WITH upd AS (
    UPDATE {{schema}}.jobs AS j
       SET original_id = x.original_id,
           status = CASE WHEN x.ttl IS NULL THEN j.status ELSE 'running' END,
           tracked = x.ttl IS NOT NULL,
           track_ttl = x.ttl,
           attempts = CASE WHEN x.ttl IS NULL THEN j.attempts ELSE 1 END,
           started = x.ttl IS NOT NULL,
           started_at = CASE WHEN x.ttl IS NULL THEN j.started_at ELSE now() END,
           lease_until = CASE WHEN x.ttl IS NULL THEN j.lease_until
                              ELSE now() + make_interval(secs => x.ttl) END,
           lease_token = coalesce(x.token, j.lease_token),
           last_message = CASE WHEN x.ttl IS NULL THEN j.last_message
                               ELSE 'tracked: worked on outside any worker' END
      FROM unnest($1::bigint[], $2::bigint[], $3::float8[], $4::text[])
           AS x(id, original_id, ttl, token)
     WHERE j.id = x.id AND j.status = 'queued'
    RETURNING j.id, j.type, j.status, j.attempts, j.last_message
), ev AS (
    INSERT INTO {{schema}}.job_events (job_id, job_type, kind, status, attempt, message, at)
    SELECT id, type, 'status', status, attempts, last_message, now() FROM upd
     WHERE status = 'running' AND (SELECT {{schema}}.events_fence())
     ORDER BY id
)
SELECT id FROM upd
"""

# Finished jobs whose callback is due and untouched for $1 seconds, of the types $2;
# taking them moves `updated_at`, so that another process leaves them for as long.
CALLBACKS_DUE = """
UPDATE {{schema}}.jobs SET updated_at = now()
 WHERE id = ANY(ARRAY(
           SELECT id FROM {{schema}}.jobs
            WHERE callback_pending AND updated_at < now() - make_interval(secs => $1)
              AND type = ANY($2::text[])
            ORDER BY id LIMIT $3
              FOR UPDATE SKIP LOCKED))
RETURNING *
"""

CALLBACKS_DONE = """
UPDATE {{schema}}.jobs SET callback_pending = false
 WHERE id = ANY($1::bigint[]) AND callback_pending
"""
