"""The SQLite store: one file, WAL, one short `BEGIN IMMEDIATE` transaction per batch.

SQLite lets one writer in at a time. Within a process, writes queue on a lock so that
they never wait on each other inside SQLite; across processes, `busy_timeout` waits for
the lock and a transaction that still finds the database locked is tried again, so that
"database is locked" never reaches a job. Times are the local clock's epoch seconds:
every process sharing a file is on this machine.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from sqlalchemy import event, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ..exceptions import InvalidJobState, JobNotFound, StoreError
from ..models import Job, JobEvent, JobPage, JobStatus, Stats
from . import _queries, migrations
from ._rows import event_from_row, iso, job_from_row
from .base import ClaimedJob, Enqueued, JobFilter, NewEvent, NewJob, Outcome, Store
from .tables import job_events, jobs

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.pool import ConnectionPoolEntry

T = TypeVar("T")

_BUSY_TIMEOUT_MS = 5000
_LOCKED_RETRY_FOR = 60.0  # seconds a write keeps trying while other processes hold the lock

_INSERT = text("""
INSERT INTO jobs (type, queue, priority, status, input, max_attempts, unique_key, tags,
                  metadata, owner, parent_id, created_at, run_at, updated_at)
SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, 'queued', j.value ->> 3, j.value ->> 4,
       j.value ->> 5, j.value -> 6, j.value -> 7, j.value ->> 8, j.value ->> 9,
       :now, coalesce(j.value ->> 10, :now), :now
  FROM json_each(:rows) AS j
 WHERE true
ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL DO NOTHING
RETURNING id, unique_key
""")

# The batch statements below join a JSON array of rows to `jobs` by primary key; the
# unary `+` keeps SQLite from scanning the status index instead (it would visit every
# running job for every row of the batch).
_CLAIM = text("""
UPDATE jobs
   SET status = 'running', attempts = attempts + 1, lease_token = :token,
       lease_until = :now + :lease, worker_id = :worker, started_at = :now,
       updated_at = :now, last_message = NULL
 WHERE id IN (SELECT id FROM jobs INDEXED BY jobs_ready
               WHERE status = 'queued' AND run_at <= :now
                 AND type IN (SELECT value FROM json_each(:types))
                 AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)))
               ORDER BY priority DESC, run_at, id
               LIMIT :limit)
RETURNING id, type, queue, input, attempts, max_attempts
""")

_NEXT_READY = text("""
SELECT min(run_at) FROM jobs INDEXED BY jobs_scheduled
 WHERE status = 'queued'
   AND type IN (SELECT value FROM json_each(:types))
   AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)))
""")

_EVENTS = text("""
INSERT INTO job_events (job_id, job_type, kind, attempt, progress, message, data, at)
SELECT e.value ->> 0,
       coalesce(e.value ->> 1, (SELECT type FROM jobs WHERE id = e.value ->> 0), '?'),
       e.value ->> 2, e.value ->> 3, e.value ->> 4,
       e.value ->> 5, e.value ->> 6, :now
  FROM json_each(:events) AS e
""")

_PROGRESS = text("""
UPDATE jobs
   SET progress = p.value ->> 1, progress_message = p.value ->> 2, updated_at = :now
  FROM json_each(:reports) AS p
 WHERE jobs.id = CAST(p.value ->> 0 AS INTEGER) AND +jobs.status = 'running'
""")

_FINISH = text("""
UPDATE jobs
   SET status = o.value ->> 2,
       output = o.value ->> 3,
       errors = CASE WHEN o.value ->> 4 IS NULL THEN errors
                     ELSE json_insert(errors, '$[#]', json(o.value ->> 4)) END,
       run_at = CASE WHEN o.value ->> 2 = 'queued' THEN :now + (o.value ->> 5) ELSE run_at END,
       finished_at = CASE WHEN o.value ->> 2 = 'queued' THEN NULL ELSE :now END,
       progress = CASE WHEN o.value ->> 2 = 'succeeded' THEN 1.0 ELSE progress END,
       last_message = o.value ->> 6,
       lease_token = NULL, lease_until = NULL, updated_at = :now
  FROM json_each(:outcomes) AS o
 WHERE jobs.id = CAST(o.value ->> 0 AS INTEGER) AND jobs.lease_token = o.value ->> 1
   AND +jobs.status = 'running'
RETURNING jobs.id
""")

_HEARTBEAT = text("""
UPDATE jobs SET lease_until = :now + :lease
  FROM json_each(:leases) AS l
 WHERE jobs.id = CAST(l.value ->> 0 AS INTEGER) AND jobs.lease_token = l.value ->> 1
   AND +jobs.status = 'running'
RETURNING jobs.id, jobs.cancel_requested
""")

_CANCEL_REQUESTED = text("""
SELECT id FROM jobs
 WHERE id IN (SELECT value FROM json_each(:ids)) AND +status = 'running' AND cancel_requested
""")

_RELEASE = text("""
UPDATE jobs
   SET status = 'queued', attempts = attempts - 1, lease_token = NULL, lease_until = NULL,
       worker_id = NULL, last_message = :reason, updated_at = :now, run_at = :now
  FROM json_each(:leases) AS l
 WHERE jobs.id = CAST(l.value ->> 0 AS INTEGER) AND jobs.lease_token = l.value ->> 1
   AND +jobs.status = 'running'
""")

_RESCUE = text("""
UPDATE jobs
   SET status = CASE WHEN cancel_requested THEN 'cancelled'
                     WHEN attempts >= max_attempts THEN 'failed'
                     ELSE 'queued' END,
       errors = json_insert(errors, '$[#]', json_object(
                    'attempt', attempts, 'type', 'LeaseExpired',
                    'message', 'the worker holding the job stopped renewing its lease',
                    'traceback', NULL, 'at', :now_iso)),
       finished_at = CASE WHEN cancel_requested OR attempts >= max_attempts THEN :now END,
       last_message = 'lease expired (worker ' || coalesce(worker_id, '?') || ' lost)',
       lease_token = NULL, lease_until = NULL, run_at = :now, updated_at = :now
 WHERE status = 'running' AND lease_until < :now
RETURNING id
""")


def _is_locked(exc: DBAPIError) -> bool:
    message = str(exc.orig).lower()
    return "database is locked" in message or "database is busy" in message


class SQLiteStore(Store):
    """Jobs in one SQLite file (or `:memory:` for a single process)."""

    poll_interval = 0.1

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self._engine: AsyncEngine | None = None
        self._write_lock = anyio.Lock()
        self._memory = ":memory:" in url or url.rstrip("/").endswith(":")

    # -- lifetime ---------------------------------------------------------------------

    async def open(self, *, create_schema: bool = True) -> None:
        engine = create_async_engine(self.url, connect_args={"timeout": _BUSY_TIMEOUT_MS / 1000})

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_conn: Any, record: ConnectionPoolEntry) -> None:
            # Transactions are begun by hand below, so that writers can take the lock
            # up front (BEGIN IMMEDIATE) instead of upgrading and deadlocking.
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: Connection) -> None:
            write = conn.get_execution_options().get("brains_jobs_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        self._engine = engine
        if create_schema:
            await self.migrate()

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    @property
    def engine(self) -> AsyncEngine:
        """The SQLAlchemy engine (open the store first)."""
        if self._engine is None:
            raise StoreError("the store is not open")
        return self._engine

    async def _write(self, fn: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run `fn` in one write transaction, retrying while other processes hold the lock."""
        deadline = time.monotonic() + _LOCKED_RETRY_FOR
        delay = 0.005
        async with self._write_lock:
            while True:
                try:
                    # Shielded: a statement cancelled half-way leaves aiosqlite's thread
                    # and the pooled connection in a state that cannot be closed cleanly.
                    # Statements are short; cancellation lands right after.
                    with anyio.CancelScope(shield=True):
                        async with self.engine.connect() as conn:
                            conn = await conn.execution_options(brains_jobs_write=True)
                            async with conn.begin():
                                result = await fn(conn)
                    return result
                except DBAPIError as exc:
                    if not _is_locked(exc) or time.monotonic() > deadline:
                        raise StoreError(f"SQLite write failed: {exc.orig}") from exc
                await anyio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.25)

    async def _read(self, fn: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        if self._memory:
            # An in-memory database lives on one connection: share the writer's turn.
            async with self._write_lock:
                return await self._read_now(fn)
        return await self._read_now(fn)

    async def _read_now(self, fn: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        try:
            with anyio.CancelScope(shield=True):  # see _write
                async with self.engine.connect() as conn, conn.begin():
                    result = await fn(conn)
        except DBAPIError as exc:
            raise StoreError(f"SQLite read failed: {exc.orig}") from exc
        return result

    async def migrate(self) -> list[str]:
        steps = migrations.load("sqlite")

        async def apply(conn: AsyncConnection) -> list[str]:
            await conn.exec_driver_sql(
                "CREATE TABLE IF NOT EXISTS brains_jobs_migrations "
                "(name TEXT PRIMARY KEY, applied_at REAL NOT NULL)"
            )
            done = {
                row[0]
                for row in await conn.exec_driver_sql("SELECT name FROM brains_jobs_migrations")
            }
            applied = []
            for step in steps:
                if step.name in done:
                    continue
                for statement in _statements(step.sql):
                    await conn.exec_driver_sql(statement)
                await conn.execute(
                    text("INSERT INTO brains_jobs_migrations VALUES (:name, :now)"),
                    {"name": step.name, "now": time.time()},
                )
                applied.append(step.name)
            return applied

        return await self._write(apply)

    def migration_sql(self) -> str:
        return "\n".join(f"-- {m.name}\n{m.sql}" for m in migrations.load("sqlite"))

    # -- producers --------------------------------------------------------------------

    async def enqueue(
        self, jobs_: Sequence[NewJob], *, connection: AsyncConnection | None = None
    ) -> list[Enqueued]:
        if not jobs_:
            return []
        payload = json.dumps(
            [
                [
                    j.type,
                    j.queue,
                    j.priority,
                    j.input,
                    j.max_attempts,
                    j.unique_key,
                    list(j.tags),
                    j.metadata,
                    j.owner,
                    j.parent_id,
                    None if j.run_at is None else j.run_at.timestamp(),
                ]
                for j in jobs_
            ]
        )

        async def insert(conn: AsyncConnection) -> list[Enqueued]:
            rows = (await conn.execute(_INSERT, {"rows": payload, "now": time.time()})).all()
            result = _match_inserted(jobs_, sorted((r[0], r[1]) for r in rows))
            missing = [j.unique_key for j, r in zip(jobs_, result, strict=True) if r is None]
            existing: dict[str | None, int] = {}
            if missing:
                found = await conn.execute(
                    select(jobs.c.unique_key, jobs.c.id).where(jobs.c.unique_key.in_(missing))
                )
                existing = {row[0]: row[1] for row in found}
            return [
                r if r is not None else Enqueued(existing[j.unique_key], created=False)
                for j, r in zip(jobs_, result, strict=True)
            ]

        if connection is not None:
            result = await insert(connection)
        else:
            result = await self._write(insert)
            self.work_signal.notify()
            self.event_signal.notify()
        return result

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
        token = uuid.uuid4().hex
        params = {
            "token": token,
            "now": time.time(),
            "lease": lease,
            "worker": worker_id,
            "types": json.dumps(list(types)),
            "queues": None if queues is None else json.dumps(list(queues)),
            "limit": limit,
        }

        async def claim(conn: AsyncConnection) -> list[ClaimedJob]:
            rows = (await conn.execute(_CLAIM, params)).all()
            return [ClaimedJob(r[0], r[1], r[2], r[3], r[4], r[5], token) for r in rows]

        claimed = await self._write(claim)
        if claimed:
            self.event_signal.notify()
        # SQLite returns the rows in no particular order; run the best first.
        return sorted(claimed, key=lambda c: c.id)

    async def next_ready(
        self, queues: Sequence[str] | None, types: Sequence[str]
    ) -> datetime | None:
        params = {
            "types": json.dumps(list(types)),
            "queues": None if queues is None else json.dumps(list(queues)),
        }

        async def read(conn: AsyncConnection) -> float | None:
            value = (await conn.execute(_NEXT_READY, params)).scalar()
            return None if value is None else float(value)

        ts = await self._read(read)
        return None if ts is None else datetime.fromtimestamp(ts, UTC)

    async def finish(
        self, outcomes: Sequence[Outcome], events: Sequence[NewEvent] = ()
    ) -> list[int]:
        progress = [[e.job_id, e.progress, e.message] for e in events if e.kind == "progress"]
        event_rows = json.dumps(
            [
                [
                    e.job_id,
                    e.job_type,
                    e.kind,
                    e.attempt,
                    e.progress,
                    e.message,
                    None if e.data is None else json.dumps(e.data),
                ]
                for e in events
            ]
        )
        outcome_rows = json.dumps(
            [
                [
                    o.job_id,
                    o.lease_token,
                    o.status.value,
                    o.output,
                    None if o.error is None else json.dumps(o.error),
                    o.retry_in,
                    o.message,
                ]
                for o in outcomes
            ]
        )

        async def write(conn: AsyncConnection) -> list[int]:
            now = time.time()
            if events:
                await conn.execute(_EVENTS, {"events": event_rows, "now": now})
            if progress:
                await conn.execute(_PROGRESS, {"reports": json.dumps(progress), "now": now})
            if not outcomes:
                return []
            done = {
                r[0] for r in await conn.execute(_FINISH, {"outcomes": outcome_rows, "now": now})
            }
            rejected = [o for o in outcomes if o.job_id not in done]
            if rejected:
                await conn.execute(
                    _EVENTS,
                    {"events": json.dumps([_rejection(o) for o in rejected]), "now": now},
                )
            return [o.job_id for o in rejected]

        rejected = await self._write(write)
        self.event_signal.notify()
        return rejected

    async def heartbeat(
        self, leases: Sequence[tuple[int, str]], lease: float
    ) -> tuple[set[int], set[int]]:
        if not leases:
            return set(), set()
        params = {"leases": json.dumps(leases), "lease": lease, "now": time.time()}

        async def beat(conn: AsyncConnection) -> tuple[set[int], set[int]]:
            rows = (await conn.execute(_HEARTBEAT, params)).all()
            held = {r[0] for r in rows}
            asked = {r[0] for r in rows if r[1]}
            return {job_id for job_id, _ in leases if job_id not in held}, asked

        return await self._write(beat)

    async def cancel_requested(self, ids: Sequence[int]) -> set[int]:
        if not ids:
            return set()

        async def read(conn: AsyncConnection) -> set[int]:
            rows = await conn.execute(_CANCEL_REQUESTED, {"ids": json.dumps(list(ids))})
            return {r[0] for r in rows}

        return await self._read(read)

    async def release(self, leases: Sequence[tuple[int, str]], reason: str) -> None:
        if not leases:
            return
        params = {"leases": json.dumps(leases), "reason": reason, "now": time.time()}

        async def write(conn: AsyncConnection) -> None:
            await conn.execute(_RELEASE, params)

        await self._write(write)
        self.work_signal.notify()
        self.event_signal.notify()

    async def rescue_expired(self) -> list[int]:
        now = time.time()

        async def write(conn: AsyncConnection) -> list[int]:
            rows = await conn.execute(_RESCUE, {"now": now, "now_iso": iso(now)})
            return [r[0] for r in rows]

        rescued = await self._write(write)
        if rescued:
            self.work_signal.notify()
            self.event_signal.notify()
        return rescued

    # -- inspection and administration ------------------------------------------------

    async def get(self, job_id: int) -> Job | None:
        async def read(conn: AsyncConnection) -> Job | None:
            row = (await conn.execute(select(jobs).where(jobs.c.id == job_id))).mappings().first()
            return None if row is None else job_from_row(row)

        return await self._read(read)

    async def list_jobs(self, filters: JobFilter, *, limit: int, cursor: str | None) -> JobPage:
        query = _queries.list_jobs(filters, limit=limit, cursor=cursor, dialect="sqlite")

        async def read(conn: AsyncConnection) -> JobPage:
            rows = (await conn.execute(query)).mappings().all()
            found = [job_from_row(r) for r in rows]
            more = len(found) == limit and limit > 0
            return JobPage(jobs=found, next_cursor=str(found[-1].id) if more else None)

        return await self._read(read)

    async def stats(self) -> Stats:
        async def read(conn: AsyncConnection) -> Stats:
            by_type: dict[str, dict[JobStatus, int]] = {}
            for job_type, status, n in await conn.execute(_queries.stats()):
                by_type.setdefault(job_type, {})[JobStatus(status)] = n
            return Stats(by_type=by_type)

        return await self._read(read)

    async def pending_count(self) -> int:
        async def read(conn: AsyncConnection) -> int:
            result = await conn.exec_driver_sql(
                "SELECT count(*) FROM jobs WHERE status IN ('queued', 'running')"
            )
            return int(result.scalar_one())

        return await self._read(read)

    async def cancel(self, job_id: int) -> JobStatus:
        async def write(conn: AsyncConnection) -> JobStatus:
            now = time.time()
            current = (
                await conn.execute(select(jobs.c.status).where(jobs.c.id == job_id))
            ).scalar()
            if current is None:
                raise JobNotFound(job_id)
            if current == JobStatus.QUEUED:
                await conn.execute(
                    text("""
                    UPDATE jobs SET status = 'cancelled', finished_at = :now, updated_at = :now,
                                    last_message = 'cancelled by request'
                     WHERE id = :id
                    """),
                    {"id": job_id, "now": now},
                )
                return JobStatus.CANCELLED
            if current == JobStatus.RUNNING:
                await conn.execute(
                    text("UPDATE jobs SET cancel_requested = 1, updated_at = :now WHERE id = :id"),
                    {"id": job_id, "now": now},
                )
                return JobStatus.RUNNING
            raise InvalidJobState(f"job {job_id} is {current} and cannot be cancelled")

        status = await self._write(write)
        self.event_signal.notify()
        return status

    async def retry(self, job_id: int, extra_attempts: int) -> None:
        async def write(conn: AsyncConnection) -> None:
            now = time.time()
            row = (
                await conn.execute(
                    text("""
                    UPDATE jobs
                       SET status = 'queued', max_attempts = attempts + :extra, run_at = :now,
                           finished_at = NULL, cancel_requested = 0, output = NULL,
                           last_message = 'retried by request', updated_at = :now
                     WHERE id = :id AND status IN ('failed', 'cancelled')
                    RETURNING id
                    """),
                    {"id": job_id, "now": now, "extra": extra_attempts},
                )
            ).first()
            if row is None:
                current = (
                    await conn.execute(select(jobs.c.status).where(jobs.c.id == job_id))
                ).scalar()
                if current is None:
                    raise JobNotFound(job_id)
                raise InvalidJobState(
                    f"job {job_id} is {current}; only failed or cancelled jobs can be retried"
                )

        await self._write(write)
        self.work_signal.notify()
        self.event_signal.notify()

    async def prune(self, finished_before: datetime, statuses: Sequence[JobStatus]) -> list[int]:
        params = {
            "before": finished_before.timestamp(),
            "statuses": json.dumps([s.value for s in statuses if s.is_final]),
        }

        async def write(conn: AsyncConnection) -> list[int]:
            rows = await conn.execute(
                text("""
                DELETE FROM jobs
                 WHERE status IN (SELECT value FROM json_each(:statuses))
                   AND finished_at < :before
                RETURNING id
                """),
                params,
            )
            ids = sorted(r[0] for r in rows)
            if ids:
                await conn.execute(
                    text(
                        "DELETE FROM job_events WHERE job_id IN (SELECT value FROM json_each(:ids))"
                    ),
                    {"ids": json.dumps(ids)},
                )
            return ids

        return await self._write(write)

    async def events_after(
        self, seq: int, *, job_id: int | None = None, limit: int = 1000
    ) -> list[JobEvent]:
        query = select(job_events).where(job_events.c.seq > seq)
        if job_id is not None:
            query = query.where(job_events.c.job_id == job_id)
        query = query.order_by(job_events.c.seq).limit(limit)

        async def read(conn: AsyncConnection) -> list[JobEvent]:
            return [event_from_row(r) for r in (await conn.execute(query)).mappings()]

        return await self._read(read)

    async def last_seq(self) -> int:
        async def read(conn: AsyncConnection) -> int:
            value = (await conn.exec_driver_sql("SELECT max(seq) FROM job_events")).scalar()
            return int(value or 0)

        return await self._read(read)


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (triggers hold semicolons of their own)."""
    statements: list[str] = []
    current: list[str] = []
    for line in script.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("--")):
            continue
        current.append(line)
        candidate = "\n".join(current)
        if sqlite3.complete_statement(candidate):
            statements.append(candidate.strip())
            current = []
    if current and "\n".join(current).strip():
        statements.append("\n".join(current).strip())
    return statements


def _match_inserted(
    wanted: Sequence[NewJob], inserted: list[tuple[int, str | None]]
) -> list[Enqueued | None]:
    """Pair inserted rows (ascending ids, so in input order) with the jobs asked for.

    A job whose unique key did not come back (or came back for an earlier job of the same
    batch) was a repeat: its slot is None and the caller looks the existing id up.
    """
    keys_inserted = {key for _, key in inserted if key is not None}
    rows = iter(inserted)
    seen: set[str] = set()
    result: list[Enqueued | None] = []
    for job in wanted:
        key = job.unique_key
        if key is None or (key in keys_inserted and key not in seen):
            if key is not None:
                seen.add(key)
            result.append(Enqueued(next(rows)[0], created=True))
        else:
            result.append(None)
    return result


def _rejection(outcome: Outcome) -> list[Any]:
    message = f"late {outcome.status.value} result rejected: the lease of this attempt was lost"
    return [outcome.job_id, None, "log", 0, None, message, json.dumps({"level": "warning"})]
