"""The PostgreSQL store: many workers on many machines share one database.

The hot statements (enqueue, claim, finish, heartbeat) run on a pool of raw asyncpg
connections as prepared statements with generic plans, one statement (one round trip)
per batch: arrays go in through `unnest`, and a data-modifying CTE writes the audit
trail (`job_events`) in the same statement, in the order SQLite's triggers write it.
SQLAlchemy serves `list_jobs()`, `engine`, and the host application's own connections
(an enqueue inside the host's transaction).

Every time comes from the database clock (`now()`), so workers whose clocks disagree
still agree on run times and leases. Wake-ups travel on two NOTIFY channels,
`<schema>.work` and `<schema>.events` (see "wake-ups" below); polling is only the
fallback. Event sequence numbers are read up to a horizon that no transaction still in
flight can fall below (see the migration), so a reader never skips an event that commits
late.

URL: ``postgresql+asyncpg://user@host:port/db?schema=NAME`` (``postgresql://`` works too;
``schema`` defaults to ``brains_jobs``). All tables live in that schema.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
import zlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import anyio
import anyio.lowlevel
import asyncpg  # type: ignore[import-untyped]  # no stubs; typed here at the edges
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from .._signal import Signal
from ..exceptions import ConfigurationError, InvalidJobState, JobNotFound, StoreError
from ..models import Job, JobEvent, JobPage, JobStatus, Stats
from . import _queries, migrations
from ._rows import event_from_row, job_from_row
from .base import ClaimedJob, Enqueued, JobFilter, NewEvent, NewJob, Outcome, Store

T = TypeVar("T")

logger = logging.getLogger("brains_jobs.store.postgres")

DEFAULT_SCHEMA = "brains_jobs"
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,55}")  # leaves room for ".events"
_LISTENER_PING = 5.0  # seconds between health checks of the LISTEN connection
_CONNECT_TIMEOUT = 10.0
_ANNOUNCE_DELAY = 0.002  # seconds an events notification waits for others to join it

# Driver failures, wrapped in StoreError at this module's edge.
_DB_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)

# -- SQL ------------------------------------------------------------------------------
# `{{schema}}` is replaced by the quoted schema name. Statements that write events call
# events_fence() once (an InitPlan) before the rows take their sequence numbers; see the
# migration for why.

_ENQUEUE = """
WITH input AS (
    SELECT * FROM unnest(CAST($1 AS text[]), CAST($2 AS text[]), CAST($3 AS int[]),
                         CAST($4 AS text[]), CAST($5 AS int[]), CAST($6 AS text[]),
                         CAST($7 AS text[]), CAST($8 AS text[]), CAST($9 AS text[]),
                         CAST($10 AS bigint[]), CAST($11 AS timestamptz[]))
           WITH ORDINALITY AS i(type, queue, priority, input, max_attempts, unique_key,
                                tags, metadata, owner, parent_id, run_at, ord)
), ins AS (
    INSERT INTO {{schema}}.jobs (type, queue, priority, status, input, max_attempts,
                                 unique_key, tags, metadata, owner, parent_id, created_at,
                                 run_at, updated_at)
    SELECT type, queue, priority, 'queued', input::json, max_attempts, unique_key,
           tags::jsonb, metadata::jsonb, owner, parent_id, now(), coalesce(run_at, now()),
           now()
      FROM input ORDER BY ord
    {{on_conflict}}
    RETURNING id, type, unique_key
), ev AS (
    INSERT INTO {{schema}}.job_events (job_id, job_type, kind, status, attempt, at)
    SELECT id, type, 'status', 'queued', 0, now() FROM ins
     WHERE {{fence}} ORDER BY id
)
"""

# The common batch: one type and one set of options, no key, tags, owner or schedule.
# Only the inputs vary, and one array instead of eleven makes the statement a third
# cheaper.
_ENQUEUE_PLAIN = """
WITH ins AS (
    INSERT INTO {{schema}}.jobs (type, queue, priority, status, input, max_attempts,
                                 created_at, run_at, updated_at)
    SELECT $1, $2, $3, 'queued', i.input::json, $5, now(), now(), now()
      FROM unnest(CAST($4 AS text[])) WITH ORDINALITY AS i(input, ord)
     ORDER BY ord
    RETURNING id, type
), ev AS (
    INSERT INTO {{schema}}.job_events (job_id, job_type, kind, status, attempt, at)
    SELECT id, type, 'status', 'queued', 0, now() FROM ins
     WHERE {{fence}} ORDER BY id
)
SELECT id FROM ins ORDER BY id
"""

# Without unique keys every row is inserted, in input order.
_ENQUEUE_NO_KEYS = """
SELECT id FROM ins ORDER BY id
"""

# With them, a repeat is skipped (inside the batch too) and the id holding its key is
# read from the statement's snapshot.
_ENQUEUE_KEYS = """
SELECT id, unique_key, true FROM ins
UNION ALL
SELECT id, unique_key, false FROM {{schema}}.jobs
 WHERE unique_key = ANY(ARRAY(SELECT unique_key FROM input WHERE unique_key IS NOT NULL))
"""

_CLAIM = """
WITH claimed AS (
    UPDATE {{schema}}.jobs
       SET status = 'running', attempts = attempts + 1, lease_token = $1,
           lease_until = now() + make_interval(secs => $2), worker_id = $3,
           started_at = now(), updated_at = now(), last_message = NULL
     WHERE id = ANY(ARRAY(
             SELECT id FROM {{schema}}.jobs
              WHERE status = 'queued' AND run_at <= now() AND type = ANY($4::text[])
                AND ($5::text[] IS NULL OR queue = ANY($5::text[]))
              ORDER BY priority DESC, run_at, id
              LIMIT $6
                FOR UPDATE SKIP LOCKED))
    RETURNING id, type, queue, input, attempts, max_attempts, priority, run_at
), ev AS (
    INSERT INTO {{schema}}.job_events (job_id, job_type, kind, status, attempt, at)
    SELECT id, type, 'status', 'running', attempts, now() FROM claimed
     WHERE (SELECT {{schema}}.events_fence())
     ORDER BY priority DESC, run_at, id
)
SELECT id, type, queue, input, attempts, max_attempts FROM claimed
 ORDER BY priority DESC, run_at, id
"""

_NEXT_READY = """
SELECT extract(epoch FROM min(run_at) - now())::float8 FROM {{schema}}.jobs
 WHERE status = 'queued' AND type = ANY($1::text[])
   AND ($2::text[] IS NULL OR queue = ANY($2::text[]))
"""

# One row per job touched: an outcome (status not null), a progress report, or both.
# Status events come after the handler's own events and before rejections, in input
# order, as SQLite's triggers write them.
_FINISH = """
WITH u AS (
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[],
                         $6::float8[], $7::text[], $8::bool[], $9::float8[], $10::text[])
           WITH ORDINALITY AS u(id, token, status, output, error, retry_in, message,
                                has_progress, progress, progress_message, ord)
), upd AS (
    UPDATE {{schema}}.jobs AS j
       SET status = coalesce(u.status, j.status),
           output = CASE WHEN u.status IS NULL THEN j.output ELSE u.output::json END,
           errors = CASE WHEN u.error IS NULL THEN j.errors
                         ELSE j.errors || jsonb_build_array(u.error::jsonb) END,
           run_at = CASE WHEN u.status = 'queued'
                         THEN now() + make_interval(secs => u.retry_in) ELSE j.run_at END,
           finished_at = CASE WHEN u.status IS NULL THEN j.finished_at
                              WHEN u.status = 'queued' THEN NULL ELSE now() END,
           progress = CASE WHEN u.status = 'succeeded' THEN 1.0::float8
                           WHEN u.has_progress THEN u.progress ELSE j.progress END,
           progress_message = CASE WHEN u.has_progress THEN u.progress_message
                                   ELSE j.progress_message END,
           last_message = CASE WHEN u.status IS NULL THEN j.last_message ELSE u.message END,
           lease_token = CASE WHEN u.status IS NULL THEN j.lease_token END,
           lease_until = CASE WHEN u.status IS NULL THEN j.lease_until END,
           updated_at = now()
      FROM u
     WHERE j.id = u.id AND j.status = 'running'
       AND (u.status IS NULL OR j.lease_token = u.token)
    RETURNING j.id, j.type, j.status, j.attempts, j.last_message, u.ord,
              u.status IS NOT NULL AS finished
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
     ORDER BY x.grp, x.ord
)
SELECT id FROM rejected ORDER BY ord
"""

# The common batch: every outcome a success without a message, no handler events. The
# same writes as _FINISH, from three arrays instead of seventeen (a sixth cheaper).
_FINISH_SUCCEEDED = """
WITH u AS (
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[])
           WITH ORDINALITY AS u(id, token, output, ord)
), upd AS (
    UPDATE {{schema}}.jobs AS j
       SET status = 'succeeded', output = u.output::json, finished_at = now(),
           progress = 1.0::float8, last_message = NULL, lease_token = NULL,
           lease_until = NULL, updated_at = now()
      FROM u
     WHERE j.id = u.id AND j.status = 'running' AND j.lease_token = u.token
    RETURNING j.id, j.type, j.attempts, u.ord
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
     ORDER BY x.grp, x.ord
)
SELECT id FROM rejected ORDER BY ord
"""

_HEARTBEAT = """
UPDATE {{schema}}.jobs AS j SET lease_until = now() + make_interval(secs => $3)
  FROM unnest($1::bigint[], $2::text[]) AS l(id, token)
 WHERE j.id = l.id AND j.lease_token = l.token AND j.status = 'running'
RETURNING j.id, j.cancel_requested
"""

_CANCEL_REQUESTED = """
SELECT id FROM {{schema}}.jobs
 WHERE id = ANY($1::bigint[]) AND status = 'running' AND cancel_requested
"""

_RELEASE = """
WITH l AS (
    SELECT * FROM unnest($1::bigint[], $2::text[]) WITH ORDINALITY AS l(id, token, ord)
), upd AS (
    UPDATE {{schema}}.jobs AS j
       SET status = 'queued', attempts = j.attempts - 1, lease_token = NULL,
           lease_until = NULL, worker_id = NULL, last_message = $3, updated_at = now(),
           run_at = now()
      FROM l
     WHERE j.id = l.id AND j.lease_token = l.token AND j.status = 'running'
    RETURNING j.id, j.type, j.attempts, l.ord
)
INSERT INTO {{schema}}.job_events (job_id, job_type, kind, status, attempt, message, at)
SELECT id, type, 'status', 'queued', attempts, $3, now() FROM upd
 WHERE (SELECT {{schema}}.events_fence())
 ORDER BY ord
"""

_RESCUE = """
WITH upd AS (
    UPDATE {{schema}}.jobs
       SET status = CASE WHEN cancel_requested THEN 'cancelled'
                         WHEN attempts >= max_attempts THEN 'failed'
                         ELSE 'queued' END,
           errors = errors || jsonb_build_array(jsonb_build_object(
                        'attempt', attempts, 'type', 'LeaseExpired',
                        'message', 'the worker holding the job stopped renewing its lease',
                        'traceback', NULL, 'at', now())),
           finished_at = CASE WHEN cancel_requested OR attempts >= max_attempts
                              THEN now() END,
           last_message = 'lease expired (worker ' || coalesce(worker_id, '?') || ' lost)',
           lease_token = NULL, lease_until = NULL, run_at = now(), updated_at = now()
     WHERE status = 'running' AND lease_until < now()
    RETURNING id, type, status, attempts, last_message
), ev AS (
    INSERT INTO {{schema}}.job_events (job_id, job_type, kind, status, attempt, message, at)
    SELECT id, type, 'status', status, attempts, last_message, now() FROM upd
     WHERE (SELECT {{schema}}.events_fence())
     ORDER BY id
)
SELECT id FROM upd ORDER BY id
"""

_CANCEL = """
WITH old AS (
    SELECT id, status FROM {{schema}}.jobs WHERE id = $1 FOR UPDATE
), upd AS (
    UPDATE {{schema}}.jobs AS j
       SET status = CASE WHEN old.status = 'queued' THEN 'cancelled' ELSE j.status END,
           cancel_requested = j.cancel_requested OR old.status = 'running',
           finished_at = CASE WHEN old.status = 'queued' THEN now() ELSE j.finished_at END,
           last_message = CASE WHEN old.status = 'queued' THEN 'cancelled by request'
                               ELSE j.last_message END,
           updated_at = now()
      FROM old
     WHERE j.id = old.id AND old.status IN ('queued', 'running')
    RETURNING j.id, j.type, j.status, j.attempts, j.last_message, old.status AS was
), ev AS (
    INSERT INTO {{schema}}.job_events (job_id, job_type, kind, status, attempt, message, at)
    SELECT id, type, 'status', status, attempts, last_message, now() FROM upd
     WHERE was = 'queued' AND (SELECT {{schema}}.events_fence())
)
SELECT status FROM old
"""

_RETRY = """
WITH upd AS (
    UPDATE {{schema}}.jobs
       SET status = 'queued', max_attempts = attempts + $2, run_at = now(),
           finished_at = NULL, cancel_requested = false, output = NULL,
           last_message = 'retried by request', updated_at = now()
     WHERE id = $1 AND status IN ('failed', 'cancelled')
    RETURNING id, type, attempts, last_message
), ev AS (
    INSERT INTO {{schema}}.job_events (job_id, job_type, kind, status, attempt, message, at)
    SELECT id, type, 'status', 'queued', attempts, last_message, now() FROM upd
     WHERE (SELECT {{schema}}.events_fence())
)
SELECT id FROM upd
"""


_PRUNE = """
WITH gone AS (
    DELETE FROM {{schema}}.jobs
     WHERE status = ANY($1::text[]) AND finished_at < $2
    RETURNING id
), events AS (
    DELETE FROM {{schema}}.job_events
     WHERE job_id = ANY(ARRAY(SELECT id FROM gone))
)
SELECT id FROM gone ORDER BY id
"""


class _Wakeup(Signal):
    """A `Signal` that keeps a notification nobody was waiting for, for the next waiter,
    and tells the store when someone first waits (so that it starts listening).

    A NOTIFY often lands while the worker is busy claiming, or while the event feeder is
    reading: with a plain Signal it would be lost, and the waiter would sleep a whole
    poll interval (which NOTIFY lets this store keep long). A kept notification costs at
    most one extra claim or read.
    """

    def __init__(self, on_wait: Callable[[], None]) -> None:
        super().__init__()
        self._on_wait = on_wait
        self._waiters = 0
        self._kept = False

    def notify(self) -> None:
        if not self._waiters:
            self._kept = True
        super().notify()

    def armed(self) -> anyio.Event:
        self._on_wait()
        if self._kept:
            self._kept = False
            done = anyio.Event()
            done.set()
            return done
        return super().armed()

    async def wait(self, timeout: float | None = None) -> bool:
        self._on_wait()
        if self._kept:
            self._kept = False
            await anyio.lowlevel.checkpoint()
            return True
        self._waiters += 1
        try:
            return await super().wait(timeout)
        finally:
            self._waiters -= 1


class PostgresStore(Store):
    """Jobs in PostgreSQL, in their own schema (`?schema=NAME`, default `brains_jobs`)."""

    poll_interval = 1.0  # NOTIFY wakes waiters; polling only covers a lost notification

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        super().__init__()
        self.work_signal = _Wakeup(self._want_listener)
        self.event_signal = _Wakeup(self._want_listener)
        self.url = url
        self.dsn, self.schema = _parse_url(url)
        self.pool_size = pool_size
        quoted = f'"{self.schema}"'
        self.work_channel = f"{self.schema}.work"
        self.events_channel = f"{self.schema}.events"
        self._substitutions = {
            "{{schema}}": quoted,
            "{{work_channel}}": self.work_channel,
            "{{events_channel}}": self.events_channel,
            "{{fence_ns}}": str(zlib.crc32(self.schema.encode()) & 0x7FFFFF),
        }
        # In the host's transaction no fence: it may stay open for long, and holding every
        # reader back behind it would stall all events; its `queued` events may then reach
        # live subscribers that are already past their seq only through the table.
        self._sql_enqueue = {
            (host, keys): self._enqueue_sql(host=host, keys=keys)
            for host in (False, True)
            for keys in (False, True)
        }
        self._sql_enqueue_plain = {
            host: self._enqueue_sql(host=host, keys=False, plain=True) for host in (False, True)
        }
        self._sql_claim = self._sql(_CLAIM)
        self._sql_next_ready = self._sql(_NEXT_READY)
        self._sql_finish = self._sql(_FINISH)
        self._sql_finish_succeeded = self._sql(_FINISH_SUCCEEDED)
        self._sql_heartbeat = self._sql(_HEARTBEAT)
        self._sql_cancel_requested = self._sql(_CANCEL_REQUESTED)
        self._sql_release = self._sql(_RELEASE)
        self._sql_rescue = self._sql(_RESCUE)
        self._sql_cancel = self._sql(_CANCEL)
        self._sql_retry = self._sql(_RETRY)
        self._pool: asyncpg.Pool | None = None
        self._engine: AsyncEngine | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._own_pids: set[int] = set()
        #: The server pid of the LISTEN connection, once there is one.
        self.listener_pid: int | None = None
        self._listener_wanted = asyncio.Event()
        self._announce_wanted = asyncio.Event()
        # A notification and nothing else: losing it to a crash loses nothing, so its
        # commit does not wait for the WAL to reach the disk.
        self._sql_announce = (
            "SELECT set_config('synchronous_commit', 'off', true),"
            f" pg_notify('{self.events_channel}', '')"
        )

    def _enqueue_sql(self, *, host: bool, keys: bool, plain: bool = False) -> str:
        conflict = "ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL DO NOTHING"
        if plain:
            sql = _ENQUEUE_PLAIN
        else:
            sql = _ENQUEUE.replace("{{on_conflict}}", conflict if keys else "")
            sql += _ENQUEUE_KEYS if keys else _ENQUEUE_NO_KEYS
        fence = "true" if host else "(SELECT {{schema}}.events_fence())"
        sql = self._sql(sql.replace("{{fence}}", fence))
        return _named(sql) if host else sql

    def _sql(self, sql: str) -> str:
        for placeholder, value in self._substitutions.items():
            sql = sql.replace(placeholder, value)
        return sql

    # -- lifetime ---------------------------------------------------------------------

    async def open(self, *, create_schema: bool = True) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self.dsn,
                min_size=1,
                max_size=self.pool_size,
                timeout=_CONNECT_TIMEOUT,
                # The claim's custom plans are no better than its generic one, yet the
                # plan cache keeps re-planning it (a third of its cost) unless told not to.
                server_settings={
                    **self._server_settings("pool"),
                    "plan_cache_mode": "force_generic_plan",
                },
                init=self._init_connection,
                reset=_keep_session,
            )
        except _DB_ERRORS as exc:
            raise StoreError(f"cannot connect to PostgreSQL: {_describe(exc)}") from exc
        try:
            if create_schema:
                await self.migrate()
            await self._warm_up()
        except BaseException:
            await self._pool.close()
            self._pool = None
            raise
        self._engine = create_async_engine(
            "postgresql+asyncpg://" + self.dsn.partition("://")[2],
            pool_size=2,
            max_overflow=8,
            pool_pre_ping=True,
            connect_args={"server_settings": self._server_settings("engine")},
        )
        # Tasks the store owns from open() to close(), not a task group: the two are
        # often called from different tasks (an application's startup and shutdown
        # hooks, or several stores opened side by side), which a cancel scope entered in
        # open() would not survive. asyncpg ties this store to asyncio anyway.
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._listen(), name=f"brains_jobs listener {self.schema}"),
            loop.create_task(self._announce(), name=f"brains_jobs announcer {self.schema}"),
        ]

    async def _warm_up(self) -> None:
        """Prepare the hot statements on a first connection (plans, type lookups), so that
        the first batches do not pay for it. They run on empty input in a transaction that
        is rolled back: nothing is written, nobody is notified.
        """
        empty: list[Any] = []
        try:
            async with self.pool.acquire() as conn:
                transaction = conn.transaction()
                await transaction.start()
                try:
                    await conn.fetch(self._sql_enqueue_plain[False], "", "", 0, empty, 1)
                    await conn.fetch(self._sql_enqueue[False, False], *[empty] * 11)
                    await conn.fetch(self._sql_claim, "", 1.0, "", empty, None, 0)
                    await conn.fetch(self._sql_finish, *[empty] * 17)
                    await conn.fetch(self._sql_finish_succeeded, empty, empty, empty)
                finally:
                    await transaction.rollback()
        except _DB_ERRORS as exc:  # e.g. create_schema=False before the schema exists
            logger.debug("warming up the statements failed: %s", _describe(exc))

    async def close(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # close() itself is being cancelled
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.dispose()
        pool, self._pool = self._pool, None
        if pool is not None:
            with anyio.move_on_after(10) as scope:
                await pool.close()
            if scope.cancelled_caught:
                pool.terminate()

    def _server_settings(self, role: str) -> dict[str, str]:
        return {
            "search_path": f'"{self.schema}"',
            # pg_stat_activity tells a DBA which connection is what (63 bytes at most).
            "application_name": f"brains_jobs {role} {self.schema}"[:63],
            "TimeZone": "UTC",
        }

    async def _init_connection(self, conn: asyncpg.Connection) -> None:
        pid = conn.get_server_pid()
        self._own_pids.add(pid)
        conn.add_termination_listener(lambda _c: self._own_pids.discard(pid))

    @property
    def pool(self) -> asyncpg.Pool:
        """The asyncpg pool of the hot path (open the store first)."""
        if self._pool is None:
            raise StoreError("the store is not open")
        return self._pool

    @property
    def engine(self) -> AsyncEngine:
        """A SQLAlchemy engine on the same database, search_path set to the schema."""
        if self._engine is None:
            raise StoreError("the store is not open")
        return self._engine

    async def _run(
        self,
        what: str,
        fn: Callable[[asyncpg.Connection], Awaitable[T]],
        *,
        idempotent: bool = False,
    ) -> T:
        """Run `fn` on a pooled connection; driver errors become `StoreError`.

        An `idempotent` call that finds its connection dead (the server restarted or
        terminated it) runs again on another: after an outage every pooled connection
        is dead at once. Other calls may have taken effect, so they fail.
        """
        attempts = self.pool_size + 1 if idempotent else 1
        for attempt in range(1, attempts + 1):
            try:
                async with self.pool.acquire() as conn:
                    try:
                        return await fn(conn)
                    except _DB_ERRORS as exc:
                        if attempt == attempts or not _connection_lost(exc, conn):
                            raise
                logger.info("PostgreSQL connection lost during %s; trying another", what)
            except _DB_ERRORS as exc:
                raise StoreError(f"PostgreSQL {what} failed: {_describe(exc)}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def _fetch(
        self, what: str, sql: str, *args: Any, idempotent: bool = False
    ) -> list[asyncpg.Record]:
        async def fetch(conn: asyncpg.Connection) -> list[asyncpg.Record]:
            rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
            return rows

        return await self._run(what, fetch, idempotent=idempotent)

    async def _read(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        return await self._fetch("read", sql, *args, idempotent=True)

    # -- schema -----------------------------------------------------------------------

    async def migrate(self) -> list[str]:
        steps = migrations.load("postgresql")
        q = f'"{self.schema}"'
        table = f"{q}.brains_jobs_migrations"

        async def applied_names(conn: asyncpg.Connection) -> set[str]:
            exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table)
            if not exists:
                return set()
            return {r[0] for r in await conn.fetch(f"SELECT name FROM {table}")}

        async def apply(conn: asyncpg.Connection) -> list[str]:
            if {s.name for s in steps} <= await applied_names(conn):
                return []  # the common case: no lock taken
            async with conn.transaction():
                # Many workers may start at once: one migrates, the others wait and then
                # find nothing left to do.
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                    f"brains_jobs.migrate:{self.schema}",
                )
                await conn.execute(self._migrations_preamble())
                done = await applied_names(conn)
                applied = []
                for step in steps:
                    if step.name in done:
                        continue
                    await conn.execute(self._sql(step.sql))
                    await conn.execute(f"INSERT INTO {table} (name) VALUES ($1)", step.name)
                    applied.append(step.name)
                return applied

        applied = await self._run("migration", apply)
        if applied:
            logger.info("schema %s: applied migrations %s", self.schema, ", ".join(applied))
        return applied

    def _migrations_preamble(self) -> str:
        q = f'"{self.schema}"'
        return (
            f"CREATE SCHEMA IF NOT EXISTS {q};\n"
            f"CREATE TABLE IF NOT EXISTS {q}.brains_jobs_migrations (\n"
            "    name       text PRIMARY KEY,\n"
            "    applied_at timestamptz NOT NULL DEFAULT now()\n"
            ");\n"
        )

    def migration_sql(self) -> str:
        q = f'"{self.schema}"'
        lock = f"hashtextextended('brains_jobs.migrate:{self.schema}', 0)"
        parts = [
            f"-- brains-jobs schema {q}: run in one transaction.\n"
            f"BEGIN;\nSELECT pg_advisory_xact_lock({lock});\n" + self._migrations_preamble()
        ]
        parts.extend(
            f"-- {step.name}\n{self._sql(step.sql)}\n"
            f"INSERT INTO {q}.brains_jobs_migrations (name) VALUES ('{step.name}')"
            " ON CONFLICT DO NOTHING;\n"
            for step in migrations.load("postgresql")
        )
        parts.append("COMMIT;\n")
        return "\n".join(parts)

    # -- wake-ups ---------------------------------------------------------------------
    #
    # Two channels. `<schema>.work` is notified inside the transactions that queue jobs
    # (triggers), so a host's transactional enqueue is announced when, and only if, it
    # commits. `<schema>.events` is notified by the announcer task after a claim or a
    # finish has committed, in a transaction of its own: a NOTIFY in those transactions
    # would cost each commit a third of a millisecond (PostgreSQL signals every
    # listening backend and serialises notifying commits) on the way from enqueue to job
    # start. Work notifications wake event readers too: queued jobs have events.
    #
    # The LISTEN connection is opened the first time someone waits for a signal (a
    # worker, an event subscriber): a runtime that only enqueues never listens, and
    # every commit that notifies has one backend fewer to wake.

    def _want_listener(self) -> None:
        if not self._listener_wanted.is_set():
            self._listener_wanted.set()

    async def _listen_connect(self) -> asyncpg.Connection:
        try:
            conn: asyncpg.Connection = await asyncpg.connect(
                self.dsn,
                timeout=_CONNECT_TIMEOUT,
                server_settings=self._server_settings("listener"),
            )
        except _DB_ERRORS as exc:
            raise StoreError(f"cannot connect to PostgreSQL: {_describe(exc)}") from exc
        try:
            await conn.add_listener(self.work_channel, self._on_work)
            await conn.add_listener(self.events_channel, self._on_events)
        except BaseException as exc:  # cancelled too: never leave the connection open
            conn.terminate()
            if isinstance(exc, _DB_ERRORS):
                raise StoreError(f"LISTEN failed: {_describe(exc)}") from exc
            raise
        self.listener_pid = conn.get_server_pid()
        return conn

    def _on_work(self, _conn: object, pid: int, _channel: str, _payload: str) -> None:
        if pid not in self._own_pids:  # this process's own writes signal directly
            self.work_signal.notify()
            self.event_signal.notify()

    def _on_events(self, _conn: object, pid: int, _channel: str, _payload: str) -> None:
        if pid not in self._own_pids:
            self.event_signal.notify()

    async def _listen(self) -> None:
        """Once wanted, keep a LISTEN connection up; each time it (re)connects, wake every
        waiter: what was notified before is in the tables.
        """
        await self._listener_wanted.wait()
        delay = 0.05
        while True:
            try:
                conn = await self._listen_connect()
            except Exception as exc:
                logger.warning("LISTEN connection: %s; retrying in %.2fs", exc, delay)
                await anyio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.05
            self.work_signal.notify()
            self.event_signal.notify()
            try:
                await self._watch(conn)
            except Exception:  # never let the wake-ups die: log, reconnect
                logger.exception("LISTEN connection failed")
            finally:
                conn.terminate()
                self.listener_pid = None
            await anyio.sleep(delay)

    async def _watch(self, conn: asyncpg.Connection) -> None:
        """Return when `conn` is lost (closed by the server, or not answering a ping)."""
        lost = anyio.Event()
        conn.add_termination_listener(lambda _c: lost.set())
        while True:
            with anyio.move_on_after(_LISTENER_PING):
                await lost.wait()
            if lost.is_set() or conn.is_closed():
                logger.warning("LISTEN connection lost")
                return
            try:
                with anyio.fail_after(_LISTENER_PING):
                    await conn.execute("SELECT 1")
            except _DB_ERRORS as exc:
                logger.warning("LISTEN connection lost: %s", _describe(exc))
                return

    def _announce_events(self) -> None:
        """Have the announcer tell other processes that events were written."""
        self._announce_wanted.set()

    async def _announce(self) -> None:
        while True:
            await self._announce_wanted.wait()
            # Let the jobs just claimed start first, and gather the writes of the next
            # moment into the same notification.
            await anyio.sleep(_ANNOUNCE_DELAY)
            self._announce_wanted.clear()
            try:
                await self._fetch("announcement", self._sql_announce, idempotent=True)
            except StoreError as exc:  # readers still poll
                logger.warning("%s", exc)
                await anyio.sleep(1.0)

    # -- producers --------------------------------------------------------------------

    async def enqueue(
        self, jobs_: Sequence[NewJob], *, connection: AsyncConnection | None = None
    ) -> list[Enqueued]:
        if not jobs_:
            return []
        host = connection is not None
        args: Sequence[Any] | None = _plain_args(jobs_)
        if args is not None:
            keys = False
            sql = self._sql_enqueue_plain[host]
        else:
            args = _enqueue_args(jobs_)
            keys = any(j.unique_key is not None for j in jobs_)
            sql = self._sql_enqueue[host, keys]
        find = self._sql(
            "SELECT unique_key, id FROM {{schema}}.jobs WHERE unique_key = ANY(CAST($1 AS text[]))"
        )
        if connection is not None:
            try:
                rows = (
                    await connection.execute(text(sql), {f"p{i}": v for i, v in enumerate(args, 1)})
                ).all()
                result = _enqueued(jobs_, rows, keys=keys)
                if any(r is None for r in result):
                    found = await connection.execute(
                        text(_named(find)), {"p1": _missing_keys(jobs_, result)}
                    )
                    result = _enqueued(jobs_, rows, keys=keys, found=dict(found.tuples().all()))
            except DBAPIError as exc:
                raise StoreError(f"PostgreSQL enqueue failed: {exc.orig}") from exc
            return _complete(result)

        async def insert(conn: asyncpg.Connection) -> list[Enqueued | None]:
            rows = await conn.fetch(sql, *args)
            result = _enqueued(jobs_, rows, keys=keys)
            if any(r is None for r in result):
                # A key taken by a transaction that committed after this statement's
                # snapshot: read it with a fresh one.
                found = await conn.fetch(find, _missing_keys(jobs_, result))
                result = _enqueued(jobs_, rows, keys=keys, found={r[0]: r[1] for r in found})
            return result

        enqueued = _complete(await self._run("enqueue", insert))
        self.work_signal.notify()
        self.event_signal.notify()
        return enqueued

    # -- workers ----------------------------------------------------------------------

    async def claim(
        self,
        *,
        worker_id: str,
        queues: Sequence[str] | None,
        types: Sequence[str],
        limit: int,
        lease: float,
    ) -> list[ClaimedJob]:
        if limit <= 0:
            return []
        token = uuid.uuid4().hex
        rows = await self._fetch(
            "claim", self._sql_claim, token, float(lease), worker_id, list(types),
            None if queues is None else list(queues), limit,
        )
        if rows:
            self.event_signal.notify()
            self._announce_events()
        return [ClaimedJob(r[0], r[1], r[2], r[3], r[4], r[5], token) for r in rows]

    async def next_ready(
        self, queues: Sequence[str] | None, types: Sequence[str]
    ) -> datetime | None:
        # The wait is measured on the database clock and handed back on this machine's.
        rows = await self._read(
            self._sql_next_ready, list(types), None if queues is None else list(queues)
        )
        delay = rows[0][0]
        return None if delay is None else datetime.now(UTC) + timedelta(seconds=delay)

    async def finish(
        self, outcomes: Sequence[Outcome], events: Sequence[NewEvent] = ()
    ) -> list[int]:
        if not outcomes and not events:
            return []
        if not events and all(
            o.status is JobStatus.SUCCEEDED and o.message is None and o.error is None
            for o in outcomes
        ):
            rows = await self._fetch(
                "finish", self._sql_finish_succeeded,
                [o.job_id for o in outcomes], [o.lease_token for o in outcomes],
                [o.output for o in outcomes],
            )
        else:
            rows = await self._fetch("finish", self._sql_finish, *_finish_args(outcomes, events))
        self.event_signal.notify()
        self._announce_events()
        if any(o.status is JobStatus.QUEUED for o in outcomes):
            self.work_signal.notify()
        return [r[0] for r in rows]

    async def heartbeat(
        self, leases: Sequence[tuple[int, str]], lease: float
    ) -> tuple[set[int], set[int]]:
        if not leases:
            return set(), set()
        rows = await self._fetch(
            "heartbeat", self._sql_heartbeat,
            [i for i, _ in leases], [t for _, t in leases], float(lease),
            idempotent=True,
        )
        held = {r[0] for r in rows}
        asked = {r[0] for r in rows if r[1]}
        return {job_id for job_id, _ in leases if job_id not in held}, asked

    async def cancel_requested(self, ids: Sequence[int]) -> set[int]:
        if not ids:
            return set()
        rows = await self._read(self._sql_cancel_requested, list(ids))
        return {r[0] for r in rows}

    async def release(self, leases: Sequence[tuple[int, str]], reason: str) -> None:
        if not leases:
            return
        await self._fetch(
            "release", self._sql_release, [i for i, _ in leases], [t for _, t in leases], reason,
            idempotent=True,
        )
        self.work_signal.notify()
        self.event_signal.notify()
        self._announce_events()

    async def rescue_expired(self) -> list[int]:
        rows = await self._fetch("lease rescue", self._sql_rescue, idempotent=True)
        if rows:
            self.work_signal.notify()
            self.event_signal.notify()
            self._announce_events()
        return [r[0] for r in rows]

    # -- inspection and administration ------------------------------------------------

    async def get(self, job_id: int) -> Job | None:
        rows = await self._read(self._sql("SELECT * FROM {{schema}}.jobs WHERE id = $1"), job_id)
        return job_from_row(rows[0]) if rows else None

    async def list_jobs(
        self, filters: JobFilter, *, limit: int, cursor: str | None
    ) -> JobPage:
        query = _queries.list_jobs(filters, limit=limit, cursor=cursor, dialect="postgresql")
        try:
            async with self.engine.connect() as conn:
                rows = (await conn.execute(query)).mappings().all()
        except DBAPIError as exc:
            raise StoreError(f"PostgreSQL read failed: {exc.orig}") from exc
        found = [job_from_row(r) for r in rows]
        more = len(found) == limit and limit > 0
        return JobPage(jobs=found, next_cursor=str(found[-1].id) if more else None)

    async def stats(self) -> Stats:
        rows = await self._read(
            self._sql("SELECT type, status, count(*) FROM {{schema}}.jobs GROUP BY 1, 2")
        )
        by_type: dict[str, dict[JobStatus, int]] = {}
        for job_type, status, n in rows:
            by_type.setdefault(job_type, {})[JobStatus(status)] = n
        return Stats(by_type=by_type)

    async def pending_count(self) -> int:
        rows = await self._read(
            self._sql("SELECT count(*) FROM {{schema}}.jobs WHERE status IN ('queued', 'running')")
        )
        return int(rows[0][0])

    async def cancel(self, job_id: int) -> JobStatus:
        rows = await self._fetch("cancel", self._sql_cancel, job_id)
        if not rows:
            raise JobNotFound(job_id)
        was = JobStatus(rows[0][0])
        if was is JobStatus.QUEUED:
            self.event_signal.notify()
            self._announce_events()
            return JobStatus.CANCELLED
        if was is JobStatus.RUNNING:
            return JobStatus.RUNNING
        raise InvalidJobState(f"job {job_id} is {was.value} and cannot be cancelled")

    async def retry(self, job_id: int, extra_attempts: int) -> None:
        async def write(conn: asyncpg.Connection) -> str | None:
            if await conn.fetchval(self._sql_retry, job_id, extra_attempts) is not None:
                return None
            current: str | None = await conn.fetchval(
                self._sql("SELECT status FROM {{schema}}.jobs WHERE id = $1"), job_id
            )
            return current or ""

        current = await self._run("retry", write)
        if current == "":
            raise JobNotFound(job_id)
        if current is not None:
            raise InvalidJobState(
                f"job {job_id} is {current}; only failed or cancelled jobs can be retried"
            )
        self.work_signal.notify()
        self.event_signal.notify()

    async def prune(
        self, finished_before: datetime, statuses: Sequence[JobStatus]
    ) -> list[int]:
        final = [s.value for s in statuses if s.is_final]
        rows = await self._fetch("prune", self._sql(_PRUNE), final, finished_before)
        return [r[0] for r in rows]

    async def events_after(
        self, seq: int, *, job_id: int | None = None, limit: int = 1000
    ) -> list[JobEvent]:
        rows = await self._read(
            self._sql("SELECT * FROM {{schema}}.events_after($1, $2, $3)"), seq, job_id, limit
        )
        return [event_from_row(r) for r in rows]

    async def last_seq(self) -> int:
        # Not max(seq): an event below it may still be in flight (see the migration).
        rows = await self._read(self._sql("SELECT {{schema}}.events_horizon()"))
        return int(rows[0][0] or 0)


# -- helpers ----------------------------------------------------------------------------


def _parse_url(url: str) -> tuple[str, str]:
    """The asyncpg DSN and the schema of a `postgresql[+asyncpg]://` URL."""
    parts = urlsplit(url)
    scheme, _, driver = parts.scheme.partition("+")
    if scheme not in ("postgresql", "postgres") or driver not in ("", "asyncpg"):
        raise ConfigurationError(
            f"the PostgreSQL store needs a postgresql+asyncpg:// URL, got {parts.scheme}://"
        )
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = DEFAULT_SCHEMA
    kept = []
    for key, value in query:
        if key == "schema":
            schema = value
        else:
            kept.append((key, value))
    if not _SCHEMA_NAME.fullmatch(schema):
        raise ConfigurationError(
            f"schema {schema!r}: use letters, digits and underscores, at most 56 characters"
        )
    dsn = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(kept), parts.fragment))
    return dsn, schema


def _connection_lost(exc: BaseException, conn: asyncpg.Connection) -> bool:
    """True when `exc` means the connection itself is gone (not the statement failed)."""
    if isinstance(
        exc,
        asyncpg.ConnectionDoesNotExistError
        | asyncpg.PostgresConnectionError
        | asyncpg.exceptions.AdminShutdownError
        | asyncpg.exceptions.CrashShutdownError
        | ConnectionError,
    ):
        return True
    try:
        return bool(conn.is_closed())
    except asyncpg.InterfaceError:  # the pool already took the dead connection back
        return True


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Skip asyncpg's reset query (a round trip per release): no statement here leaves
    session state behind (locks are transaction-level, nothing LISTENs on the pool).
    """


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _named(sql: str) -> str:
    """`$1` placeholders as SQLAlchemy `:p1` ones (the statements use CAST, not `::`)."""
    return re.sub(r"\$(\d+)", r":p\1", sql)


def _enqueue_args(jobs_: Sequence[NewJob]) -> list[list[Any]]:
    return [
        [j.type for j in jobs_],
        [j.queue for j in jobs_],
        [j.priority for j in jobs_],
        [j.input for j in jobs_],
        [j.max_attempts for j in jobs_],
        [j.unique_key for j in jobs_],
        [json.dumps(list(j.tags)) if j.tags else "[]" for j in jobs_],
        [json.dumps(j.metadata) if j.metadata else "{}" for j in jobs_],
        [j.owner for j in jobs_],
        [j.parent_id for j in jobs_],
        [j.run_at for j in jobs_],
    ]


def _plain_args(jobs_: Sequence[NewJob]) -> list[Any] | None:
    """The arguments of the plain statement, or None when the batch is not plain."""
    first = jobs_[0]
    kind = (first.type, first.queue, first.priority, first.max_attempts)
    for j in jobs_:
        if (
            (j.type, j.queue, j.priority, j.max_attempts) != kind
            or j.unique_key is not None
            or j.tags
            or j.metadata
            or j.owner is not None
            or j.parent_id is not None
            or j.run_at is not None
        ):
            return None
    return [first.type, first.queue, first.priority, [j.input for j in jobs_], first.max_attempts]


def _enqueued(
    wanted: Sequence[NewJob],
    rows: Sequence[Sequence[Any]],
    *,
    keys: bool,
    found: dict[str, int] | None = None,
) -> list[Enqueued | None]:
    """Pair the statement's rows with the jobs asked for, in input order.

    Inserted rows come back with ascending ids in input order, so they pair with the jobs
    that were inserted: all of them without unique keys; with keys, those without one
    and the first of each key not already taken (`created` true). A repeat gets the id
    holding its key, or None when that id is not known yet.
    """
    if not keys:
        return [Enqueued(r[0], created=True) for r in rows]
    inserted = sorted((r[0], r[1]) for r in rows if r[2])
    holders: dict[str, int] = {r[1]: r[0] for r in rows if not r[2]}
    if found:
        holders.update(found)
    keys_inserted = {key for _, key in inserted if key is not None}
    ids = iter(i for i, _ in inserted)
    result: list[Enqueued | None] = []
    for job in wanted:
        key = job.unique_key
        if key is None:
            result.append(Enqueued(next(ids), created=True))
        elif key in keys_inserted:
            keys_inserted.discard(key)
            holders[key] = next(ids)
            result.append(Enqueued(holders[key], created=True))
        elif key in holders:
            result.append(Enqueued(holders[key], created=False))
        else:
            result.append(None)
    return result


def _missing_keys(wanted: Sequence[NewJob], result: Sequence[Enqueued | None]) -> list[str]:
    return [j.unique_key for j, r in zip(wanted, result, strict=True) if r is None and j.unique_key]


def _complete(result: Sequence[Enqueued | None]) -> list[Enqueued]:
    if any(r is None for r in result):
        raise StoreError("a unique key was taken by a job that no longer exists")
    return [r for r in result if r is not None]


def _finish_args(outcomes: Sequence[Outcome], events: Sequence[NewEvent]) -> list[list[Any]]:
    # The last progress report of each job goes into the same UPDATE as its outcome:
    # a statement may not update one row twice.
    progress: dict[int, tuple[float | None, str | None]] = {}
    for e in events:
        if e.kind == "progress":
            progress[e.job_id] = (e.progress, e.message)
    ids: list[int] = []
    tokens: list[str | None] = []
    statuses: list[str | None] = []
    outputs: list[str | None] = []
    errors: list[str | None] = []
    retry_in: list[float | None] = []
    messages: list[str | None] = []
    has_progress: list[bool] = []
    values: list[float | None] = []
    progress_messages: list[str | None] = []
    for o in outcomes:
        report = progress.pop(o.job_id, None)
        ids.append(o.job_id)
        tokens.append(o.lease_token)
        statuses.append(o.status.value)
        outputs.append(o.output)
        errors.append(None if o.error is None else json.dumps(o.error))
        retry_in.append(float(o.retry_in))
        messages.append(o.message)
        has_progress.append(report is not None)
        values.append(report[0] if report else None)
        progress_messages.append(report[1] if report else None)
    for job_id, (value, message) in progress.items():
        ids.append(job_id)
        tokens.append(None)
        statuses.append(None)
        outputs.append(None)
        errors.append(None)
        retry_in.append(None)
        messages.append(None)
        has_progress.append(True)
        values.append(value)
        progress_messages.append(message)
    return [
        ids, tokens, statuses, outputs, errors, retry_in, messages, has_progress, values,
        progress_messages,
        [e.job_id for e in events],
        [e.job_type for e in events],
        [e.kind for e in events],
        [e.attempt for e in events],
        [e.progress for e in events],
        [e.message for e in events],
        [None if e.data is None else json.dumps(e.data) for e in events],
    ]
