"""The SQLite store's maintenance role: expired leases, pruning, leadership (a lease
row), and the workers registry.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, text, update

from ...models import Job, JobStatus, WorkerInfo
from .._rows import job_from_row, worker_from_row
from ..dependencies import sweep
from ..records import ExpiredJob
from ..tables import leaders, workers
from . import sql
from .connection import SQLiteBase
from .dependencies import SQLiteDependencies

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection


class SQLiteMaintenance(SQLiteBase):
    """Maintenance on SQLite."""

    async def expired(self, limit: int) -> list[ExpiredJob]:
        params = {"now": time.time(), "limit": limit}

        async def read(conn: AsyncConnection) -> list[ExpiredJob]:
            rows = await conn.execute(sql.EXPIRED, params)
            return [_expired(r) for r in rows]

        return await self._read(read, single=True)

    async def callbacks_due(self, types: Sequence[str], quiet_for: float, limit: int) -> list[Job]:
        now = time.time()
        params = {"now": now, "before": now - quiet_for, "types": json.dumps(list(types))}

        async def write(conn: AsyncConnection) -> list[Job]:
            rows = (await conn.execute(sql.CALLBACKS_DUE, {**params, "limit": limit})).mappings()
            return sorted((job_from_row(r) for r in rows), key=lambda j: j.id)

        return await self._write(write, single=True)

    async def prune(self, older_than: Mapping[JobStatus, float], limit: int) -> list[int]:
        now = time.time()

        async def write(conn: AsyncConnection) -> list[int]:
            ids: list[int] = []
            for status, seconds in older_than.items():
                if not status.is_final:
                    continue
                params = {"status": status.value, "before": now - seconds, "limit": limit}
                ids.extend(r[0] for r in await conn.execute(sql.PRUNE, params))
            if ids:
                await conn.execute(sql.PRUNE_EVENTS, {"ids": json.dumps(ids)})
                await conn.execute(sql.PRUNE_EDGES, {"ids": json.dumps(ids)})
            return sorted(ids)

        return await self._write(write)

    async def sweep_waiting(self, quiet_for: float, limit: int) -> list[JobStatus]:
        now = time.time()
        params = {"before": now - quiet_for, "limit": limit}

        async def write(conn: AsyncConnection) -> list[JobStatus]:
            rows = [tuple(r) for r in await conn.execute(sql.STALLED, params)]
            return await sweep(SQLiteDependencies(conn, now), rows)

        statuses = await self._write(write)
        if statuses:
            self.written(statuses)
        return statuses

    async def lead(self, holder: str, ttl: float) -> bool:
        now = time.time()
        params = {"holder": holder, "now": now, "until": now + ttl}

        async def write(conn: AsyncConnection) -> bool:
            return (await conn.execute(sql.LEAD, params)).first() is not None

        return await self._write(write, single=True)

    async def resign(self, holder: str) -> None:
        async def write(conn: AsyncConnection) -> None:
            await conn.execute(delete(leaders).where(leaders.c.holder == holder))

        await self._write(write, single=True)

    async def leader(self) -> str | None:
        async def read(conn: AsyncConnection) -> str | None:
            query = select(leaders.c.holder).where(leaders.c.expires_at >= datetime.now(UTC))
            value = (await conn.execute(query)).scalar()
            return None if value is None else str(value)

        return await self._read(read, single=True)

    async def register_worker(self, info: WorkerInfo) -> None:
        params = {
            "id": info.id,
            "host": info.host,
            "pid": info.pid,
            "queues": json.dumps(info.queues),
            "types": json.dumps(info.types),
            "concurrency": info.concurrency,
            "version": info.version,
            "started_at": info.started_at.timestamp(),
            "now": time.time(),
            "running": info.running,
        }

        async def write(conn: AsyncConnection) -> None:
            await conn.execute(sql.REGISTER_WORKER, params)

        await self._write(write, single=True)

    async def beat_worker(self, worker_id: str, running: int) -> bool:
        async def write(conn: AsyncConnection) -> bool:
            result = await conn.execute(
                update(workers)
                .where(workers.c.id == worker_id)
                .values(heartbeat_at=datetime.now(UTC), running=running)
                .returning(workers.c.id)
            )
            return result.first() is not None

        return await self._write(write, single=True)

    async def remove_worker(self, worker_id: str) -> None:
        async def write(conn: AsyncConnection) -> None:
            await conn.execute(delete(workers).where(workers.c.id == worker_id))

        await self._write(write, single=True)

    async def workers(self) -> list[WorkerInfo]:
        async def read(conn: AsyncConnection) -> list[WorkerInfo]:
            rows = await conn.execute(select(workers).order_by(workers.c.started_at, workers.c.id))
            return [worker_from_row(r) for r in rows.mappings()]

        return await self._read(read)

    async def reap_workers(self, silent_for: float) -> list[str]:
        async def write(conn: AsyncConnection) -> list[str]:
            rows = await conn.execute(
                text("DELETE FROM workers WHERE heartbeat_at < :before RETURNING id"),
                {"before": time.time() - silent_for},
            )
            return sorted(r[0] for r in rows)

        return await self._write(write, single=True)


def _expired(r: Any) -> ExpiredJob:
    """A row of `sql.EXPIRED`."""
    started, cancel, tracked = bool(r[6]), bool(r[7]), bool(r[9])
    return ExpiredJob(r[0], r[1], r[2], r[3], r[4], r[5], started, cancel, r[8], tracked, r[10])
