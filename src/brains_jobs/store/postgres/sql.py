"""The PostgreSQL store's statements that claim, finish and look after jobs (those that
add them are in `sql_enqueue`).

`{{schema}}` is replaced by the quoted schema name. Statements that write events call
events_fence() once (an InitPlan) before the rows take their sequence numbers (see the
first migration). Batches go in as arrays through `unnest`, and a data-modifying CTE
writes the audit trail (`job_events`) in the same statement, in the order
`brains_jobs.store.audit` gives.
"""

from __future__ import annotations

_CLAIM = """
WITH claimed AS (
    UPDATE {{schema}}.jobs
       SET status = 'running', attempts = attempts + 1, lease_token = $1,
           lease_until = now() + make_interval(secs => $2), worker_id = $3,
           started_at = now(), updated_at = now(), last_message = NULL, last_actor = $3,
           started = false
     WHERE id = ANY(ARRAY(
             SELECT id FROM {{schema}}.jobs
              WHERE status = 'queued' AND {crashes} AND run_at <= now()
                AND type = ANY($4::text[]) AND ($5::text[] IS NULL OR queue = ANY($5::text[]))
              ORDER BY priority DESC, run_at, id
              LIMIT $6
                FOR UPDATE SKIP LOCKED))
    RETURNING id, type, queue, input, attempts, max_attempts, priority, run_at, mark_start,
              has_children, version, trace
), ev AS (
    INSERT INTO {{schema}}.job_events (job_id, job_type, kind, status, attempt, actor, at)
    SELECT id, type, 'status', 'running', attempts, $3, now() FROM claimed
     WHERE (SELECT {{schema}}.events_fence())
     ORDER BY id
)
SELECT id, type, queue, input, attempts, max_attempts, mark_start, has_children, version,
       trace, extract(epoch FROM now() - run_at)::float8
  FROM claimed
 ORDER BY priority DESC, run_at, id
"""

# The limited jobs chosen by `store.limits.admit`, claimed as the plain claim does.
CLAIM_IDS = """
WITH claimed AS (
    UPDATE {{schema}}.jobs
       SET status = 'running', attempts = attempts + 1, lease_token = $1,
           lease_until = now() + make_interval(secs => $2), worker_id = $3,
           started_at = now(), updated_at = now(), last_message = NULL, last_actor = $3,
           started = false
     WHERE id = ANY($4::bigint[]) AND status = 'queued'
    RETURNING id, type, queue, input, attempts, max_attempts, priority, run_at, mark_start,
              has_children, version, trace
), ev AS (
    INSERT INTO {{schema}}.job_events (job_id, job_type, kind, status, attempt, actor, at)
    SELECT id, type, 'status', 'running', attempts, $3, now() FROM claimed
     WHERE (SELECT {{schema}}.events_fence())
     ORDER BY id
)
SELECT id, type, queue, input, attempts, max_attempts, mark_start, has_children, version,
       trace, extract(epoch FROM now() - run_at)::float8
  FROM claimed
 ORDER BY priority DESC, run_at, id
"""

# Jobs that crashed a worker before run alone: a worker claims them apart, one at a time.
CLAIM = _CLAIM.replace("{crashes}", "crashes = 0 AND NOT limited")
# Jobs that crashed a worker, one at a time; limited ones go through the limited claim.
CLAIM_ISOLATED = _CLAIM.replace("{crashes}", "crashes > 0 AND NOT limited")

NEXT_READY = """
SELECT extract(epoch FROM min(run_at) - now())::float8 FROM {{schema}}.jobs
 WHERE status = 'queued' AND type = ANY($1::text[])
   AND ($2::text[] IS NULL OR queue = ANY($2::text[]))
"""

# The batch statements below test `(j.status = 'running') IS TRUE` (the same, for a
# column that is never null) rather than `j.status = 'running'`: the plain test would let
# PostgreSQL answer it from the `jobs_running` index, and with statistics taken while
# few jobs ran (after a bulk enqueue, say) it then hashed every running job of every
# worker for each batch. This way a batch finds its own rows by primary key.
#
# One row per job touched: an outcome (status not null), a progress report, or both.
# Status events come after the handler's own events and before rejections, in input
# order, as SQLite's triggers write them. A job whose cancel was requested ends
# cancelled unless its attempt succeeded.
FINISH = """
WITH u AS (
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[],
                         $6::float8[], $7::text[], $8::bool[], $9::float8[], $10::text[],
                         $18::bool[])
           WITH ORDINALITY AS u(id, token, status, output, error, retry_in, message,
                                has_progress, progress, progress_message, give_back, ord)
), upd AS (
    UPDATE {{schema}}.jobs AS j
       SET status = CASE WHEN u.status IS NULL THEN j.status
                         WHEN j.cancel_requested AND u.status IN ('queued', 'failed')
                         THEN 'cancelled' ELSE u.status END,
           output = CASE WHEN u.status IS NULL THEN j.output ELSE u.output::json END,
           errors = CASE WHEN u.error IS NULL THEN j.errors
                         ELSE j.errors || jsonb_build_array(u.error::jsonb) END,
           run_at = CASE WHEN u.status = 'queued'
                         THEN now() + make_interval(secs => u.retry_in) ELSE j.run_at END,
           finished_at = CASE WHEN u.status IS NULL THEN j.finished_at
                              WHEN u.status = 'queued' AND NOT j.cancel_requested THEN NULL
                              ELSE now() END,
           progress = CASE WHEN u.status = 'succeeded' THEN 1.0::float8
                           WHEN u.has_progress THEN u.progress ELSE j.progress END,
           progress_message = CASE WHEN u.has_progress THEN u.progress_message
                                   ELSE j.progress_message END,
           max_attempts = j.max_attempts + CASE WHEN u.give_back THEN 1 ELSE 0 END,
           last_message = CASE WHEN u.status IS NULL THEN j.last_message
                               WHEN j.cancel_requested AND u.status IN ('queued', 'failed')
                               THEN 'cancelled by request' ELSE u.message END,
           last_actor = CASE WHEN u.status IS NULL THEN j.last_actor END,
           lease_token = CASE WHEN u.status IS NULL THEN j.lease_token END,
           lease_until = CASE WHEN u.status IS NULL THEN j.lease_until END,
           updated_at = now()
      FROM u
     WHERE j.id = u.id AND (j.status = 'running') IS TRUE
       AND (u.status IS NULL OR j.lease_token = u.token)
    RETURNING j.id, j.type, j.status, j.attempts, j.last_message, u.ord,
              u.status IS NOT NULL AS finished, j.has_children
), rejected AS (
    SELECT u.id, u.status, u.ord FROM u
     WHERE u.status IS NOT NULL AND NOT EXISTS (SELECT FROM upd WHERE upd.id = u.id)
), ev AS (
    INSERT INTO {{schema}}.job_events (job_id, job_type, kind, status, attempt, progress,
                                       message, data, at)
    SELECT x.job_id, x.job_type, x.kind, x.status, x.attempt, x.progress, x.message,
           x.data, now()
      FROM (
        SELECT 1 AS grp, e.ord, e.job_id, e.job_type, e.kind, NULL::text AS status,
               e.attempt, e.progress, e.message, e.data::jsonb AS data
          FROM unnest($11::bigint[], $12::text[], $13::text[], $14::int[], $15::float8[],
                      $16::text[], $17::text[])
               WITH ORDINALITY AS e(job_id, job_type, kind, attempt, progress, message,
                                    data, ord)
        UNION ALL
        SELECT 2, upd.ord, upd.id, upd.type, 'status', upd.status, upd.attempts, NULL,
               upd.last_message, NULL
          FROM upd WHERE upd.finished
        UNION ALL
        SELECT 3, r.ord, r.id,
               coalesce((SELECT type FROM {{schema}}.jobs WHERE id = r.id), '?'), 'log',
               NULL, 0, NULL,
               'late ' || r.status || ' result rejected: the lease of this attempt was lost',
               '{"level": "warning"}'::jsonb
          FROM rejected AS r
      ) AS x
     WHERE (SELECT {{schema}}.events_fence())
     ORDER BY x.grp, CASE WHEN x.grp = 1 THEN x.ord ELSE x.job_id END
)
-- The rejected outcomes, then the finished jobs that others wait for (a dependent may
-- have come after the claim: those are resolved at once, in a transaction of their own).
SELECT id, parent FROM (
    SELECT id, false AS parent, ord FROM rejected
    UNION ALL
    SELECT id, true, ord FROM upd WHERE finished AND has_children
) AS r ORDER BY parent, ord
"""

# The common batch: every outcome a success without a message, no handler events. The
# same writes as FINISH, from three arrays instead of seventeen (a sixth cheaper).
# The tokens and the outputs come as one text each, joined by U+001F (`args.joined`):
# neither a lease token nor JSON text holds that character, and one text costs the
# worker half a microsecond less per job than an array, whose every element asyncpg
# checks against two abstract base classes.
FINISH_SUCCEEDED = """
WITH u AS (
    SELECT * FROM unnest($1::bigint[], string_to_array($2, E'\\x1f'),
                         string_to_array($3, E'\\x1f'))
           WITH ORDINALITY AS u(id, token, output, ord)
), upd AS (
    UPDATE {{schema}}.jobs AS j
       SET status = 'succeeded', output = u.output::json, finished_at = now(),
           progress = 1.0::float8, last_message = NULL, last_actor = NULL, lease_token = NULL,
           lease_until = NULL, updated_at = now()
      FROM u
     WHERE j.id = u.id AND (j.status = 'running') IS TRUE AND j.lease_token = u.token
    RETURNING j.id, j.type, j.attempts, u.ord, j.has_children
), rejected AS (
    SELECT u.id, u.ord FROM u WHERE NOT EXISTS (SELECT FROM upd WHERE upd.id = u.id)
), ev AS (
    INSERT INTO {{schema}}.job_events (job_id, job_type, kind, status, attempt, message,
                                       data, at)
    SELECT x.job_id, x.job_type, x.kind, x.status, x.attempt, x.message, x.data, now()
      FROM (
        SELECT 2 AS grp, upd.ord, upd.id AS job_id, upd.type AS job_type, 'status' AS kind,
               'succeeded' AS status, upd.attempts AS attempt, NULL AS message,
               NULL::jsonb AS data
          FROM upd
        UNION ALL
        SELECT 3, r.ord, r.id,
               coalesce((SELECT type FROM {{schema}}.jobs WHERE id = r.id), '?'), 'log',
               NULL, 0,
               'late succeeded result rejected: the lease of this attempt was lost',
               '{"level": "warning"}'::jsonb
          FROM rejected AS r
      ) AS x
     WHERE (SELECT {{schema}}.events_fence())
     ORDER BY x.grp, CASE WHEN x.grp = 1 THEN x.ord ELSE x.job_id END
)
-- The rejected outcomes, then the finished jobs that others wait for (a dependent may
-- have come after the claim: those are resolved at once, in a transaction of their own).
SELECT id, parent FROM (
    SELECT id, false AS parent, ord FROM rejected
    UNION ALL
    SELECT id, true, ord FROM upd WHERE has_children
) AS r ORDER BY parent, ord
"""

HEARTBEAT = """
UPDATE {{schema}}.jobs AS j
   SET lease_until = now() + make_interval(secs => $3),
       started = j.started OR j.id = ANY($4::bigint[]),
       mark_start = j.mark_start AND NOT j.id = ANY($4::bigint[])
  FROM unnest($1::bigint[], $2::text[]) AS l(id, token)
 WHERE j.id = l.id AND j.lease_token = l.token AND (j.status = 'running') IS TRUE
RETURNING j.id, j.cancel_requested
"""

MARK_STARTED = """
UPDATE {{schema}}.jobs AS j SET started = true, mark_start = false
  FROM unnest($1::bigint[], $2::text[]) AS l(id, token)
 WHERE j.id = l.id AND j.lease_token = l.token AND (j.status = 'running') IS TRUE
RETURNING j.id
"""

CANCEL_REQUESTED = """
SELECT id FROM {{schema}}.jobs
 WHERE id = ANY($1::bigint[]) AND status = 'running' AND cancel_requested
"""

RELEASE = """
WITH l AS (
    SELECT * FROM unnest($1::bigint[], $2::text[]) WITH ORDINALITY AS l(id, token, ord)
), upd AS (
    UPDATE {{schema}}.jobs AS j
       SET status = CASE WHEN j.cancel_requested THEN 'cancelled' ELSE 'queued' END,
           finished_at = CASE WHEN j.cancel_requested THEN now() END,
           max_attempts = j.max_attempts + 1, lease_token = NULL,
           lease_until = NULL, worker_id = NULL, last_message = $3, last_actor = NULL,
           updated_at = now(), run_at = now()
      FROM l
     WHERE j.id = l.id AND j.lease_token = l.token AND (j.status = 'running') IS TRUE
    RETURNING j.id, j.type, j.status, j.attempts, j.has_children, l.ord
), ev AS (
    INSERT INTO {{schema}}.job_events (job_id, job_type, kind, status, attempt, message, at)
    SELECT id, type, 'status', status, attempts, $3, now() FROM upd
     WHERE (SELECT {{schema}}.events_fence())
     ORDER BY id
)
SELECT id, has_children, status FROM upd ORDER BY id
"""

EXPIRED = """
SELECT id, type, lease_token, attempts, max_attempts, crashes, started, cancel_requested,
       worker_id, tracked, queue
  FROM {{schema}}.jobs
 WHERE status = 'running' AND lease_until < now()
 ORDER BY lease_until
 LIMIT $1
"""

PRUNE = """
WITH gone AS (
    DELETE FROM {{schema}}.jobs
     WHERE id = ANY(ARRAY(
             SELECT id FROM {{schema}}.jobs AS j
              WHERE status = $1 AND finished_at IS NOT NULL
                AND finished_at < now() - make_interval(secs => $2)
                AND NOT (has_children AND EXISTS (
                    SELECT FROM {{schema}}.job_dependencies AS d
                      JOIN {{schema}}.jobs AS c ON c.id = d.child_id
                     WHERE d.parent_id = j.id AND c.status = 'waiting'))
              ORDER BY finished_at LIMIT $3))
    RETURNING id
), events AS (
    DELETE FROM {{schema}}.job_events WHERE job_id = ANY(ARRAY(SELECT id FROM gone))
), edges AS (
    DELETE FROM {{schema}}.job_dependencies
     WHERE parent_id = ANY(ARRAY(SELECT id FROM gone))
        OR child_id = ANY(ARRAY(SELECT id FROM gone))
)
SELECT id FROM gone
"""

OLDEST_QUEUED = """
SELECT min(created_at) FROM {{schema}}.jobs WHERE status = 'queued'
"""

REGISTER_WORKER = """
INSERT INTO {{schema}}.workers (id, host, pid, queues, types, concurrency, version,
                                started_at, heartbeat_at, running)
VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7, $8, now(), $9)
ON CONFLICT (id) DO UPDATE
   SET heartbeat_at = now(), running = excluded.running, queues = excluded.queues,
       types = excluded.types, concurrency = excluded.concurrency
"""

BEAT_WORKER = """
UPDATE {{schema}}.workers SET heartbeat_at = now(), running = $2 WHERE id = $1 RETURNING id
"""

REAP_WORKERS = """
DELETE FROM {{schema}}.workers
 WHERE heartbeat_at < now() - make_interval(secs => $1)
RETURNING id
"""

CLAIM_LEADER = """
INSERT INTO {{schema}}.leaders (name, holder, since, expires_at)
VALUES ('maintenance', $1, now(), now() + make_interval(secs => $2))
ON CONFLICT (name) DO UPDATE
   SET holder = excluded.holder, expires_at = excluded.expires_at,
       since = CASE WHEN leaders.holder = excluded.holder THEN leaders.since
                    ELSE excluded.since END
"""

LEADER = """
SELECT holder FROM {{schema}}.leaders WHERE name = 'maintenance' AND expires_at >= now()
"""

# Waiting jobs whose count disagrees with their parents, with every parent of each,
# locked for the transaction that settles them.
STALLED = """
SELECT c.id, c.pending_parents, d.parent_id, p.status, d.on_failure
  FROM {{schema}}.jobs AS c
  JOIN {{schema}}.job_dependencies AS d ON d.child_id = c.id
  JOIN {{schema}}.jobs AS p ON p.id = d.parent_id
 WHERE c.id = ANY(ARRAY(
           SELECT c.id FROM {{schema}}.jobs AS c
            WHERE c.status = 'waiting' AND c.updated_at < now() - make_interval(secs => $1)
               AND (c.pending_parents <> (
                        SELECT count(*) FROM {{schema}}.job_dependencies AS d2
                          JOIN {{schema}}.jobs AS p2 ON p2.id = d2.parent_id
                         WHERE d2.child_id = c.id
                           AND p2.status NOT IN ('succeeded', 'failed', 'cancelled', 'skipped'))
                    OR EXISTS (
                        SELECT 1 FROM {{schema}}.job_dependencies AS d3
                          JOIN {{schema}}.jobs AS p3 ON p3.id = d3.parent_id
                         WHERE d3.child_id = c.id AND d3.on_failure = 'skip'
                           AND p3.status IN ('failed', 'cancelled', 'skipped')))
            LIMIT $2))
   FOR UPDATE OF c
"""
