"""The PostgreSQL store's maintenance role: expired leases, pruning, leadership and the
workers registry.

Leadership is a session-level advisory lock held on a connection of its own: it dies
with the leader's process (or its network), so a stale leader cannot go on acting after
another took over. The `leaders` row only says who holds the lock, for `health`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import anyio
import asyncpg  # type: ignore[import-untyped]

from ...models import Job, JobStatus, WorkerInfo
from .._rows import job_from_row, worker_from_row
from ..dependencies import sweep
from ..records import ExpiredJob
from . import sql, sql_changes
from .admin import PostgresAdmin
from .connection import DB_ERRORS, describe_error, logger
from .dependencies import PostgresDependencies

_LEAD_ERRORS: tuple[type[BaseException], ...] = (*DB_ERRORS, TimeoutError)


class PostgresMaintenance(PostgresAdmin):
    """Maintenance on PostgreSQL."""

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        self._sql_expired = self.sql(sql.EXPIRED)
        self._sql_callbacks_due = self.sql(sql_changes.CALLBACKS_DUE)
        self._sql_stalled = self.sql(sql.STALLED)
        self._sql_prune = self.sql(sql.PRUNE)
        self._sql_register = self.sql(sql.REGISTER_WORKER)
        self._sql_beat = self.sql(sql.BEAT_WORKER)
        self._sql_remove = self.sql("DELETE FROM {{schema}}.workers WHERE id = $1")
        self._sql_workers = self.sql("SELECT * FROM {{schema}}.workers ORDER BY started_at, id")
        self._sql_reap = self.sql(sql.REAP_WORKERS)
        self._sql_claim_leader = self.sql(sql.CLAIM_LEADER)
        self._sql_leader = self.sql(sql.LEADER)
        self._leader_conn: asyncpg.Connection | None = None
        self._leading: str | None = None
        self._lock_key = f"brains_jobs.leader:{self.schema}"

    async def expired(self, limit: int) -> list[ExpiredJob]:
        rows = await self.read(self._sql_expired, limit)
        return [ExpiredJob(*r) for r in rows]

    async def callbacks_due(self, types: Sequence[str], quiet_for: float, limit: int) -> list[Job]:
        rows = await self.fetch(
            "callbacks due", self._sql_callbacks_due, float(quiet_for), list(types), limit
        )
        return sorted((job_from_row(r) for r in rows), key=lambda j: j.id)

    async def prune(self, older_than: Mapping[JobStatus, float], limit: int) -> list[int]:
        ids: list[int] = []
        for status, seconds in older_than.items():
            if status.is_final:
                rows = await self.fetch(
                    "prune", self._sql_prune, status.value, float(seconds), limit
                )
                ids.extend(r[0] for r in rows)
        return sorted(ids)

    async def sweep_waiting(self, quiet_for: float, limit: int) -> list[JobStatus]:
        async def write(conn: asyncpg.Connection) -> list[JobStatus]:
            async with conn.transaction():
                rows = [tuple(r) for r in await conn.fetch(self._sql_stalled, quiet_for, limit)]
                return await sweep(PostgresDependencies(self, conn), rows)

        statuses = await self.run("dependency sweep", write)
        if statuses:
            self.written(statuses)
        return statuses

    # -- leadership -------------------------------------------------------------------

    async def lead(self, holder: str, ttl: float) -> bool:
        try:
            with anyio.fail_after(max(ttl / 2, 0.5)):
                return await self._lead(holder, ttl)
        except _LEAD_ERRORS as exc:
            if self._leading is not None:
                logger.warning("leadership lost: %s", describe_error(exc))
            await self._drop_leader_connection()
            return False

    async def _lead(self, holder: str, ttl: float) -> bool:
        if self._leading is not None and self._leading != holder:
            return False  # this store's own session holds the lock for another holder
        conn = self._leader_conn
        if conn is None or conn.is_closed():
            self._leading = None
            conn = self._leader_conn = await asyncpg.connect(
                self.dsn,
                timeout=max(self.statement_timeout, 1.0),
                server_settings=self.server_settings("leader"),
            )
        if self._leading != holder:
            got = await conn.fetchval(
                "SELECT pg_try_advisory_lock(hashtextextended($1, 0))", self._lock_key
            )
            if not got:
                return False
            self._leading = holder
        # A statement that succeeds on the lock's own session proves it is still held.
        await conn.execute(self._sql_claim_leader, holder, float(ttl))
        return True

    async def resign(self, holder: str) -> None:
        if self._leading != holder or self._leader_conn is None:
            return
        self._leading = None
        try:
            with anyio.fail_after(2.0):
                await self._leader_conn.execute(
                    self.sql("DELETE FROM {{schema}}.leaders WHERE holder = $1"), holder
                )
        except _LEAD_ERRORS as exc:
            logger.debug("resigning: %s", describe_error(exc))
        await self._drop_leader_connection()

    async def _drop_leader_connection(self) -> None:
        conn, self._leader_conn = self._leader_conn, None
        self._leading = None
        if conn is not None:
            conn.terminate()  # the session ends, and the lock with it

    async def close(self) -> None:
        await self._drop_leader_connection()
        await super().close()

    async def leader(self) -> str | None:
        rows = await self.read(self._sql_leader)
        return str(rows[0][0]) if rows else None

    # -- the workers registry ---------------------------------------------------------

    async def register_worker(self, info: WorkerInfo) -> None:
        await self.fetch(
            "worker registration",
            self._sql_register,
            info.id,
            info.host,
            info.pid,
            json.dumps(info.queues),
            json.dumps(info.types),
            info.concurrency,
            info.version,
            info.started_at,
            info.running,
            idempotent=True,
        )

    async def beat_worker(self, worker_id: str, running: int) -> bool:
        rows = await self.fetch(
            "worker heartbeat", self._sql_beat, worker_id, running, idempotent=True
        )
        return bool(rows)

    async def remove_worker(self, worker_id: str) -> None:
        await self.fetch("worker removal", self._sql_remove, worker_id, idempotent=True)

    async def workers(self) -> list[WorkerInfo]:
        return [worker_from_row(r) for r in await self.read(self._sql_workers)]

    async def reap_workers(self, silent_for: float) -> list[str]:
        rows = await self.fetch(
            "worker reaping", self._sql_reap, float(silent_for), idempotent=True
        )
        return sorted(r[0] for r in rows)
