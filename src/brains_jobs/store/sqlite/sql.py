"""The SQLite store's statements.

Batches travel as one JSON array parameter joined with `json_each`. The batch statements
join that array to `jobs` by primary key; the unary `+` keeps SQLite from scanning the
status index instead (it would visit every running job for every row of the batch).
Status events are written by the triggers of the migrations (see `store.audit`).
"""

from __future__ import annotations

from sqlalchemy import text

INSERT = text("""
INSERT INTO jobs (id, type, queue, priority, status, input, max_attempts, unique_key, tags,
                  metadata, owner, parent_id, created_at, run_at, updated_at, unique_keep,
                  pending_parents, input_from, limit_keys, limited, version, trace)
SELECT j.value ->> 11, j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 13,
       j.value ->> 3, j.value ->> 4, j.value ->> 5, j.value -> 6, j.value -> 7, j.value ->> 8,
       j.value ->> 9, :now, coalesce(j.value ->> 10, :now), :now, j.value ->> 12,
       j.value ->> 14, j.value ->> 15,
       CASE WHEN j.value ->> 16 IS NOT NULL THEN j.value -> 16 END, j.value ->> 16 IS NOT NULL,
       j.value ->> 17, j.value ->> 18
  FROM json_each(:rows) AS j
 WHERE true
ON CONFLICT (unique_key)
   WHERE unique_key IS NOT NULL AND (status IN ('waiting', 'queued', 'running') OR unique_keep)
   DO NOTHING
RETURNING id, unique_key
""")

_CLAIM = """
UPDATE jobs
   SET status = 'running', attempts = attempts + 1, lease_token = :token,
       lease_until = :now + :lease, worker_id = :worker, started_at = :now,
       updated_at = :now, last_message = NULL, last_actor = :worker, started = 0
 WHERE id IN (SELECT id FROM jobs INDEXED BY {index}
               WHERE status = 'queued' AND {crashes} AND run_at <= :now
                 AND type IN (SELECT value FROM json_each(:types))
                 AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)))
               ORDER BY priority DESC, run_at, id
               LIMIT :limit)
RETURNING id, type, queue, input, attempts, max_attempts, mark_start, priority, run_at,
          has_children, version, trace
"""

# The limited jobs chosen by `store.limits.admit`, claimed as the plain claim does.
CLAIM_IDS = text("""
UPDATE jobs
   SET status = 'running', attempts = attempts + 1, lease_token = :token,
       lease_until = :now + :lease, worker_id = :worker, started_at = :now,
       updated_at = :now, last_message = NULL, last_actor = :worker, started = 0
 WHERE id IN (SELECT value FROM json_each(:ids)) AND +status = 'queued'
RETURNING id, type, queue, input, attempts, max_attempts, mark_start, priority, run_at,
          has_children, version, trace
""")

CLAIM = text(_CLAIM.format(index="jobs_ready", crashes="crashes = 0 AND NOT limited"))
# Jobs that crashed a worker, one at a time; limited ones go through the limited claim.
CLAIM_ISOLATED = text(_CLAIM.format(index="jobs_isolated", crashes="crashes > 0 AND NOT limited"))

NEXT_READY = text("""
SELECT min(run_at) FROM jobs INDEXED BY jobs_scheduled
 WHERE status = 'queued'
   AND type IN (SELECT value FROM json_each(:types))
   AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)))
""")

EVENTS = text("""
INSERT INTO job_events (job_id, job_type, kind, attempt, progress, message, data, actor, at)
SELECT e.value ->> 0,
       coalesce(e.value ->> 1, (SELECT type FROM jobs WHERE id = e.value ->> 0), '?'),
       e.value ->> 2, e.value ->> 3, e.value ->> 4,
       e.value ->> 5, e.value ->> 6, e.value ->> 7, :now
  FROM json_each(:events) AS e
""")

PROGRESS = text("""
UPDATE jobs
   SET progress = p.value ->> 1, progress_message = p.value ->> 2, updated_at = :now
  FROM json_each(:reports) AS p
 WHERE jobs.id = CAST(p.value ->> 0 AS INTEGER) AND +jobs.status = 'running'
""")

# A job whose cancel was requested ends cancelled unless its attempt succeeded.
FINISH = text("""
UPDATE jobs
   SET status = CASE WHEN cancel_requested AND o.value ->> 2 IN ('queued', 'failed')
                     THEN 'cancelled' ELSE o.value ->> 2 END,
       output = o.value ->> 3,
       errors = CASE WHEN o.value ->> 4 IS NULL THEN errors
                     ELSE json_insert(errors, '$[#]', json(o.value ->> 4)) END,
       run_at = CASE WHEN o.value ->> 2 = 'queued' THEN :now + (o.value ->> 5) ELSE run_at END,
       finished_at = CASE WHEN o.value ->> 2 = 'queued' AND NOT cancel_requested THEN NULL
                          ELSE :now END,
       progress = CASE WHEN o.value ->> 2 = 'succeeded' THEN 1.0 ELSE progress END,
       max_attempts = max_attempts + coalesce(o.value ->> 7, 0),
       last_message = CASE WHEN cancel_requested AND o.value ->> 2 IN ('queued', 'failed')
                           THEN 'cancelled by request'
                           ELSE o.value ->> 6 END,
       last_actor = NULL,
       lease_token = NULL, lease_until = NULL, updated_at = :now
  FROM json_each(:outcomes) AS o
 WHERE jobs.id = CAST(o.value ->> 0 AS INTEGER) AND jobs.lease_token = o.value ->> 1
   AND +jobs.status = 'running'
RETURNING jobs.id, jobs.has_children, jobs.status
""")

HEARTBEAT = text("""
UPDATE jobs
   SET lease_until = :now + :lease,
       started = started OR jobs.id IN (SELECT value FROM json_each(:started)),
       mark_start = mark_start AND jobs.id NOT IN (SELECT value FROM json_each(:started))
  FROM json_each(:leases) AS l
 WHERE jobs.id = CAST(l.value ->> 0 AS INTEGER) AND jobs.lease_token = l.value ->> 1
   AND +jobs.status = 'running'
RETURNING jobs.id, jobs.cancel_requested
""")

MARK_STARTED = text("""
UPDATE jobs SET started = 1, mark_start = 0
  FROM json_each(:leases) AS l
 WHERE jobs.id = CAST(l.value ->> 0 AS INTEGER) AND jobs.lease_token = l.value ->> 1
   AND +jobs.status = 'running'
RETURNING jobs.id
""")

CANCEL_REQUESTED = text("""
SELECT id FROM jobs
 WHERE id IN (SELECT value FROM json_each(:ids)) AND +status = 'running' AND cancel_requested
""")

RELEASE = text("""
UPDATE jobs
   SET status = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'queued' END,
       finished_at = CASE WHEN cancel_requested THEN :now END,
       max_attempts = max_attempts + 1, lease_token = NULL, lease_until = NULL,
       worker_id = NULL, last_message = :reason, last_actor = NULL, updated_at = :now,
       run_at = :now
  FROM json_each(:leases) AS l
 WHERE jobs.id = CAST(l.value ->> 0 AS INTEGER) AND jobs.lease_token = l.value ->> 1
   AND +jobs.status = 'running'
RETURNING jobs.id, jobs.has_children, jobs.status
""")

# The sum, key by key, of the job's usage and the numbers in :usage (JSON objects).
_ADD_USAGE = """(SELECT json_group_object(key, total)
                      FROM (SELECT key, sum(value) AS total
                              FROM (SELECT key, value FROM json_each(coalesce(jobs.usage, '{{}}'))
                                    UNION ALL
                                    SELECT key, value FROM json_each({usage}))
                             GROUP BY key))"""

# A `Change` per row of :changes (see `store._common.change_row`); NULL leaves a column.
APPLY = text(
    """
UPDATE jobs
   SET status = c.value ->> 'status',
       last_message = c.value ->> 'message',
       last_actor = c.value ->> 'actor',
       errors = CASE WHEN c.value ->> 'error' IS NULL THEN errors
                     ELSE json_insert(errors, '$[#]', json(c.value ->> 'error')) END,
       run_at = CASE WHEN c.value ->> 'run_in' IS NULL THEN run_at
                     ELSE :now + (c.value ->> 'run_in') END,
       output = CASE WHEN c.value ->> 'status' = 'succeeded' THEN c.value ->> 'output'
                     WHEN c.value ->> 'status' IN ('queued', 'running') THEN NULL
                     ELSE output END,
       progress = CASE WHEN c.value ->> 'status' = 'succeeded' THEN 1.0
                       ELSE coalesce(c.value ->> 'progress', progress) END,
       attempts = attempts + (c.value ->> 'attempts_delta'),
       max_attempts = coalesce(c.value ->> 'max_attempts', max_attempts),
       crashes = crashes + (c.value ->> 'crashes_delta'),
       mark_start = coalesce(c.value ->> 'mark_start', mark_start),
       cancel_requested = CASE WHEN c.value ->> 'status' = 'running'
                               THEN coalesce(c.value ->> 'request_cancel', cancel_requested)
                               ELSE 0 END,
       queue = coalesce(c.value ->> 'queue', queue),
       priority = coalesce(c.value ->> 'priority', priority),
       input = coalesce(c.value ->> 'input', input),
       version = coalesce(c.value ->> 'version', version),
       progress_message = CASE WHEN c.value ->> 'progress' IS NOT NULL
                               THEN c.value ->> 'message' ELSE progress_message END,
       tracked = CASE WHEN c.value ->> 'track_ttl' IS NOT NULL THEN 1 ELSE tracked END,
       track_ttl = coalesce(c.value ->> 'track_ttl', track_ttl),
       usage = CASE WHEN c.value ->> 'usage' IS NULL THEN usage
                    ELSE {merge} END,
       callback_pending = callback_pending OR c.value ->> 'callback',
       finished_at = CASE WHEN c.value ->> 'final' THEN :now
                          WHEN c.value ->> 'status' = 'running' THEN finished_at
                          ELSE NULL END,
       lease_token = CASE WHEN c.value ->> 'status' = 'running'
                          THEN coalesce(c.value ->> 'new_token', lease_token) END,
       lease_until = CASE WHEN c.value ->> 'lease_for' IS NOT NULL
                          THEN :now + (c.value ->> 'lease_for')
                          WHEN c.value ->> 'status' = 'running' THEN lease_until END,
       worker_id = CASE WHEN c.value ->> 'status' = 'running' THEN worker_id
                        WHEN c.value ->> 'status' = 'queued' THEN NULL ELSE worker_id END,
       started = CASE WHEN c.value ->> 'status' = 'running' THEN started ELSE 0 END,
       updated_at = :now
  FROM json_each(:changes) AS c
 WHERE jobs.id = CAST(c.value ->> 'id' AS INTEGER)
   AND jobs.status IN (SELECT value FROM json_each(c.value -> 'expect'))
   AND (c.value ->> 'token' IS NULL OR jobs.lease_token = c.value ->> 'token')
RETURNING jobs.id, jobs.has_children, jobs.status
""".format(merge=_ADD_USAGE.format(usage="c.value ->> 'usage'"))
)

# What the jobs of a finished batch add: usage, a flag while a callback is due, and an
# input upgraded to a newer version.
FINISHED_EXTRAS = text(
    """
UPDATE jobs
   SET usage = CASE WHEN x.value ->> 1 IS NULL THEN usage ELSE {merge} END,
       callback_pending = x.value ->> 2,
       input = coalesce(x.value ->> 3, input),
       version = coalesce(x.value ->> 4, version)
  FROM json_each(:rows) AS x
 WHERE jobs.id = CAST(x.value ->> 0 AS INTEGER)
""".format(merge=_ADD_USAGE.format(usage="x.value ->> 1"))
)

# New jobs that resubmit another one, and tracking jobs, which start `running` with the
# time their reporter has to report as their lease.
SETTLE_NEW = text("""
UPDATE jobs
   SET original_id = x.value ->> 1,
       status = CASE WHEN x.value ->> 2 IS NULL THEN status ELSE 'running' END,
       tracked = x.value ->> 2 IS NOT NULL,
       track_ttl = x.value ->> 2,
       attempts = CASE WHEN x.value ->> 2 IS NULL THEN attempts ELSE 1 END,
       started = x.value ->> 2 IS NOT NULL,
       started_at = CASE WHEN x.value ->> 2 IS NULL THEN started_at ELSE :now END,
       lease_until = CASE WHEN x.value ->> 2 IS NULL THEN lease_until
                          ELSE :now + (x.value ->> 2) END,
       lease_token = CASE WHEN x.value ->> 2 IS NULL THEN lease_token ELSE x.value ->> 3 END,
       last_message = CASE WHEN x.value ->> 2 IS NULL THEN last_message
                           ELSE 'tracked: worked on outside any worker' END
  FROM json_each(:rows) AS x
 WHERE jobs.id = CAST(x.value ->> 0 AS INTEGER) AND +jobs.status = 'queued'
""")

# Finished jobs whose callback is due and untouched since :before, of the :types;
# taking them moves `updated_at`, so that another process leaves them for as long.
CALLBACKS_DUE = text("""
UPDATE jobs SET updated_at = :now
 WHERE id IN (SELECT id FROM jobs INDEXED BY jobs_callback_pending
               WHERE callback_pending AND updated_at < :before
                 AND type IN (SELECT value FROM json_each(:types))
               ORDER BY id LIMIT :limit)
RETURNING *
""")

CALLBACKS_DONE = text("""
UPDATE jobs SET callback_pending = 0
 WHERE id IN (SELECT value FROM json_each(:ids)) AND callback_pending
""")

ACTIONS = text("""
INSERT INTO job_events (job_id, job_type, kind, status, attempt, progress, message, actor, at)
SELECT jobs.id, jobs.type,
       CASE WHEN c.value ->> 'progress' IS NULL THEN 'action' ELSE 'progress' END,
       jobs.status, jobs.attempts, c.value ->> 'progress', c.value ->> 'message',
       c.value ->> 'actor', :now
  FROM json_each(:changes) AS c JOIN jobs ON jobs.id = CAST(c.value ->> 'id' AS INTEGER)
 WHERE c.value ->> 'action' AND jobs.id IN (SELECT value FROM json_each(:applied))
 ORDER BY c.key
""")

EXPIRED = text("""
SELECT id, type, lease_token, attempts, max_attempts, crashes, started, cancel_requested,
       worker_id, tracked, queue
  FROM jobs INDEXED BY jobs_leases
 WHERE status = 'running' AND lease_until < :now
 ORDER BY lease_until
 LIMIT :limit
""")

PRUNE = text("""
DELETE FROM jobs
 WHERE id IN (SELECT id FROM jobs AS j INDEXED BY jobs_finished
               WHERE status = :status AND finished_at IS NOT NULL AND finished_at < :before
                 AND NOT (has_children AND EXISTS (
                     SELECT 1 FROM job_dependencies AS d JOIN jobs AS c ON c.id = d.child_id
                      WHERE d.parent_id = j.id AND c.status = 'waiting'))
               ORDER BY finished_at LIMIT :limit)
RETURNING id
""")

PRUNE_EVENTS = text("DELETE FROM job_events WHERE job_id IN (SELECT value FROM json_each(:ids))")

PRUNE_EDGES = text("""
DELETE FROM job_dependencies
 WHERE parent_id IN (SELECT value FROM json_each(:ids))
    OR child_id IN (SELECT value FROM json_each(:ids))
""")

LEAD = text("""
INSERT INTO leaders (name, holder, since, expires_at) VALUES ('maintenance', :holder, :now, :until)
ON CONFLICT (name) DO UPDATE
   SET holder = excluded.holder, expires_at = excluded.expires_at,
       since = CASE WHEN leaders.holder = excluded.holder THEN leaders.since ELSE excluded.since END
 WHERE leaders.holder = excluded.holder OR leaders.expires_at < :now
RETURNING holder
""")

REGISTER_WORKER = text("""
INSERT INTO workers (id, host, pid, queues, types, concurrency, version, started_at,
                     heartbeat_at, running)
VALUES (:id, :host, :pid, :queues, :types, :concurrency, :version, :started_at, :now, :running)
ON CONFLICT (id) DO UPDATE
   SET heartbeat_at = excluded.heartbeat_at, running = excluded.running,
       queues = excluded.queues, types = excluded.types, concurrency = excluded.concurrency
""")

RESERVE_IDS = text("""
UPDATE sqlite_sequence
   SET seq = max(seq, (SELECT coalesce(max(id), 0) FROM jobs)) + :count
 WHERE name = 'jobs'
RETURNING seq
""")

FIRST_RESERVATION = text("""
INSERT INTO sqlite_sequence (name, seq)
SELECT 'jobs', coalesce(max(id), 0) + :count FROM jobs
RETURNING seq
""")

# The jobs holding unique keys: waiting, queued or running ones, and those that keep
# their key until pruned (the predicate of the unique index).
HOLDERS = text("""
SELECT unique_key, id FROM jobs
 WHERE unique_key IN (SELECT value FROM json_each(:keys))
   AND unique_key IS NOT NULL AND (status IN ('waiting', 'queued', 'running') OR unique_keep)
""")

# A repeat's input and run time given to a holder of the same type that has not started
# (with the limit keys of its new input).
REPLACE = text("""
UPDATE jobs
   SET input = r.value ->> 1, run_at = coalesce(r.value ->> 2, :now), updated_at = :now,
       limit_keys = CASE WHEN r.value ->> 4 IS NOT NULL THEN r.value -> 4 ELSE limit_keys END
  FROM json_each(:rows) AS r
 WHERE jobs.id = CAST(r.value ->> 0 AS INTEGER) AND +jobs.status IN ('waiting', 'queued')
   AND jobs.type = r.value ->> 3
RETURNING jobs.id
""")

ACTION_EVENTS = text("""
INSERT INTO job_events (job_id, job_type, kind, status, attempt, message, at)
SELECT id, type, 'action', status, attempts, :message, :now FROM jobs
 WHERE id IN (SELECT value FROM json_each(:ids))
 ORDER BY id
""")

# Waiting jobs whose count disagrees with their parents, with every parent of each.
STALLED = text("""
SELECT c.id, c.pending_parents, d.parent_id, p.status, d.on_failure
  FROM jobs AS c
  JOIN job_dependencies AS d ON d.child_id = c.id
  JOIN jobs AS p ON p.id = d.parent_id
 WHERE c.id IN (SELECT c.id FROM jobs AS c INDEXED BY jobs_waiting
                 WHERE c.status = 'waiting' AND c.updated_at < :before
                  AND (c.pending_parents <> (
                           SELECT count(*) FROM job_dependencies AS d2
                             JOIN jobs AS p2 ON p2.id = d2.parent_id
                            WHERE d2.child_id = c.id
                              AND p2.status NOT IN ('succeeded', 'failed', 'cancelled', 'skipped'))
                       OR EXISTS (
                           SELECT 1 FROM job_dependencies AS d3
                             JOIN jobs AS p3 ON p3.id = d3.parent_id
                            WHERE d3.child_id = c.id AND d3.on_failure = 'skip'
                              AND p3.status IN ('failed', 'cancelled', 'skipped')))
                 LIMIT :limit)
""")

EVENT_COLUMNS = (
    "seq", "job_id", "job_type", "kind", "status", "attempt", "progress", "message", "data",
    "at", "actor",
)  # fmt: skip

_EVENTS_AFTER = f"SELECT {', '.join(EVENT_COLUMNS)} FROM job_events WHERE seq > :seq"

EVENTS_AFTER = text(_EVENTS_AFTER + " ORDER BY seq LIMIT :limit")

EVENTS_OF_JOB_AFTER = text(_EVENTS_AFTER + " AND job_id = :job_id ORDER BY seq LIMIT :limit")

LAST_SEQ = text("SELECT coalesce(max(seq), 0) FROM job_events")
