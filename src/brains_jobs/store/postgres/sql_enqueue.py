"""The PostgreSQL store's statements that add jobs: enqueues of every shape, the
unique keys they meet, and the follow-up jobs of successful attempts.

`{{schema}}` is replaced by the quoted schema name, and `{{fence}}` by the events
fence's InitPlan (or `true` in a host's transaction), as in `sql`.
"""

from __future__ import annotations

ENQUEUE = """
WITH input AS (
    SELECT * FROM unnest(CAST($1 AS text[]), CAST($2 AS text[]), CAST($3 AS int[]),
                         CAST($4 AS text[]), CAST($5 AS int[]), CAST($6 AS text[]),
                         CAST($7 AS text[]), CAST($8 AS text[]), CAST($9 AS text[]),
                         CAST($10 AS bigint[]), CAST($11 AS timestamptz[]),
                         CAST($12 AS bool[]), CAST($13 AS text[]), CAST($14 AS int[]),
                         CAST($15 AS text[]), CAST($16 AS bigint[]), CAST($17 AS text[]),
                         CAST($18 AS int[]), CAST($19 AS text[]))
           WITH ORDINALITY AS i(type, queue, priority, input, max_attempts, unique_key,
                                tags, metadata, owner, parent_id, run_at, unique_keep,
                                status, pending_parents, input_from, id, limits, version,
                                trace, ord)
), ins AS (
    INSERT INTO {{schema}}.jobs (id, type, queue, priority, status, input, max_attempts,
                                 unique_key, tags, metadata, owner, parent_id, created_at,
                                 run_at, updated_at, unique_keep, pending_parents, input_from,
                                 limit_keys, limited, version, trace)
    SELECT coalesce(id, nextval('{{schema}}.jobs_id_seq')), type, queue, priority, status,
           input::json, max_attempts, unique_key,
           tags::jsonb, metadata::jsonb, owner, parent_id, now(), coalesce(run_at, now()),
           now(), unique_keep, pending_parents, input_from,
           CASE WHEN limits IS NOT NULL
                THEN ARRAY(SELECT json_array_elements_text(limits::json)) END,
           limits IS NOT NULL, version, trace
      FROM input ORDER BY ord
    {{on_conflict}}
    RETURNING id, type, unique_key, status
), ev AS (
    INSERT INTO {{schema}}.job_events (job_id, job_type, kind, status, attempt, at)
    SELECT id, type, 'status', status, 0, now() FROM ins
     WHERE {{fence}} ORDER BY id
)
"""

# The common batch: one type and one set of options, no key, tags, owner or schedule.
# Only the inputs vary, and one array instead of eleven makes the statement a third
# cheaper. They travel as one text joined by U+001F, which JSON text never holds (it
# escapes every control character): a text array costs the client a check per element.
# The ids come back as one array: a row each would be an object each for the client's
# garbage collector, most of them kept long enough to be moved to its oldest generation.
ENQUEUE_PLAIN = """
WITH ins AS (
    INSERT INTO {{schema}}.jobs (type, queue, priority, status, input, max_attempts,
                                 created_at, run_at, updated_at, trace)
    SELECT $1, $2, $3, 'queued', i.input::json, $5, now(), now(), now(), CAST($6 AS text)
      FROM unnest(string_to_array($4, E'\\x1f')) WITH ORDINALITY AS i(input, ord)
     ORDER BY ord
    RETURNING id, type
), ev AS (
    INSERT INTO {{schema}}.job_events (job_id, job_type, kind, status, attempt, at)
    SELECT id, type, 'status', 'queued', 0, now() FROM ins
     WHERE {{fence}} ORDER BY id
)
SELECT array_agg(id ORDER BY id) FROM ins
"""

# The plain batch of one job, the common single enqueue: a row of values, with no array
# to unnest, sort and aggregate (a twentieth of the call's time).
ENQUEUE_ONE = """
WITH ins AS (
    INSERT INTO {{schema}}.jobs (type, queue, priority, status, input, max_attempts,
                                 created_at, run_at, updated_at, trace)
    VALUES ($1, $2, $3, 'queued', CAST($4 AS json), $5, now(), now(), now(), CAST($6 AS text))
    RETURNING id, type
), ev AS (
    INSERT INTO {{schema}}.job_events (job_id, job_type, kind, status, attempt, at)
    SELECT id, type, 'status', 'queued', 0, now() FROM ins WHERE {{fence}}
)
SELECT id FROM ins
"""

# Without unique keys every row is inserted, in input order.
ENQUEUE_NO_KEYS = """
SELECT id FROM ins ORDER BY id
"""

# With them, a repeat is skipped (inside the batch too) and the id holding its key is
# read from the statement's snapshot.
ENQUEUE_KEYS = """
SELECT id, unique_key, true FROM ins
UNION ALL
SELECT id, unique_key, false FROM {{schema}}.jobs
 WHERE unique_key = ANY(ARRAY(SELECT unique_key FROM input WHERE unique_key IS NOT NULL))
   AND unique_key IS NOT NULL AND (status IN ('waiting', 'queued', 'running') OR unique_keep)
"""

# The jobs holding unique keys (the predicate of the unique index).
HOLDERS = """
SELECT unique_key, id FROM {{schema}}.jobs
 WHERE unique_key = ANY(CAST($1 AS text[]))
   AND unique_key IS NOT NULL AND (status IN ('waiting', 'queued', 'running') OR unique_keep)
"""

CONFLICT = """ON CONFLICT (unique_key)
       WHERE unique_key IS NOT NULL AND (status IN ('waiting', 'queued', 'running') OR unique_keep)
       DO NOTHING"""

REPLACE = """
WITH upd AS (
    UPDATE {{schema}}.jobs AS j
       SET input = r.input::json, run_at = coalesce(r.run_at, now()), updated_at = now(),
           limit_keys = CASE WHEN r.limits IS NOT NULL
                             THEN ARRAY(SELECT json_array_elements_text(r.limits::json))
                             ELSE j.limit_keys END
      FROM unnest(CAST($1 AS bigint[]), CAST($2 AS text[]), CAST($3 AS timestamptz[]),
                  CAST($5 AS text[]), CAST($6 AS text[]))
           AS r(id, input, run_at, type, limits)
     WHERE j.id = r.id AND j.status IN ('waiting', 'queued') AND j.type = r.type
    RETURNING j.id, j.type, j.status, j.attempts
), ev AS (
    INSERT INTO {{schema}}.job_events (job_id, job_type, kind, status, attempt, message, at)
    SELECT id, type, 'action', status, attempts, $4, now() FROM upd
     WHERE (SELECT {{schema}}.events_fence()) ORDER BY id
)
SELECT id FROM upd ORDER BY id
"""

RESERVE_IDS = """
SELECT nextval(pg_get_serial_sequence('{{schema}}.jobs', 'id'))
  FROM generate_series(1, $1)
"""

# Follow-up jobs of successful attempts, with the ids reserved for them; one whose
# unique key is taken is skipped.
ENQUEUE_SPAWNED = """
WITH ins AS (
    INSERT INTO {{schema}}.jobs (id, type, queue, priority, status, input, max_attempts,
                                 unique_key, tags, metadata, owner, parent_id, created_at,
                                 run_at, updated_at, unique_keep, limit_keys, limited, version,
                                 trace)
    SELECT id, type, queue, priority, 'queued', input::json, max_attempts, unique_key,
           tags::jsonb, metadata::jsonb, owner, parent_id, now(), coalesce(run_at, now()),
           now(), unique_keep,
           CASE WHEN limits IS NOT NULL
                THEN ARRAY(SELECT json_array_elements_text(limits::json)) END,
           limits IS NOT NULL, version, trace
      FROM unnest(CAST($1 AS text[]), CAST($2 AS text[]), CAST($3 AS int[]),
                  CAST($4 AS text[]), CAST($5 AS int[]), CAST($6 AS text[]),
                  CAST($7 AS text[]), CAST($8 AS text[]), CAST($9 AS text[]),
                  CAST($10 AS bigint[]), CAST($11 AS timestamptz[]), CAST($12 AS bool[]),
                  CAST($13 AS bigint[]), CAST($14 AS text[]), CAST($15 AS int[]),
                  CAST($16 AS text[]))
           WITH ORDINALITY AS i(type, queue, priority, input, max_attempts, unique_key,
                                tags, metadata, owner, parent_id, run_at, unique_keep, id,
                                limits, version, trace, ord)
     ORDER BY ord
    ON CONFLICT DO NOTHING
    RETURNING id, type
), ev AS (
    INSERT INTO {{schema}}.job_events (job_id, job_type, kind, status, attempt, at)
    SELECT id, type, 'status', 'queued', 0, now() FROM ins
     WHERE (SELECT {{schema}}.events_fence()) ORDER BY id
)
SELECT id FROM ins
"""
