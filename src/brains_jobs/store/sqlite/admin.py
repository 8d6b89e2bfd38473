"""The SQLite store's admin and event-log roles: reading jobs and applying changes."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import select, text

from ...models import Job, JobEvent, JobPage, JobStatus, Stats
from .. import _common, _queries
from .._rows import event_from_row, job_from_row
from ..dependencies import final_parents, resolve
from ..records import Change, JobFilter
from ..tables import jobs
from . import sql
from .connection import SQLiteBase
from .dependencies import SQLiteDependencies

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection


class SQLiteAdmin(SQLiteBase):
    """Reads, changes and the event log on SQLite."""

    async def get(self, job_id: int) -> Job | None:
        async def read(conn: AsyncConnection) -> Job | None:
            row = (await conn.execute(select(jobs).where(jobs.c.id == job_id))).mappings().first()
            return None if row is None else job_from_row(row)

        return await self._read(read, single=True)

    async def list_jobs(self, filters: JobFilter, *, limit: int, cursor: str | None) -> JobPage:
        query = _queries.list_jobs(filters, limit=limit, cursor=cursor, dialect="sqlite")

        async def read(conn: AsyncConnection) -> JobPage:
            rows = (await conn.execute(query)).mappings().all()
            return _queries.page([job_from_row(r) for r in rows], limit)

        return await self._read(read)

    async def stats(self) -> Stats:
        usage = text(_queries.USAGE["sqlite"])
        durations = text(_queries.DURATIONS["sqlite"].replace("{sample}", str(Stats.SAMPLE)))

        async def read(conn: AsyncConnection) -> Stats:
            return _queries.stats_from_rows(
                (await conn.execute(_queries.stats())).all(),
                (await conn.execute(usage)).all(),
                (await conn.execute(durations)).all(),
            )

        return await self._read(read)

    async def get_many(self, ids: Sequence[int]) -> list[Job]:
        if not ids:
            return []
        query = select(jobs).where(jobs.c.id.in_(list(ids))).order_by(jobs.c.id)

        async def read(conn: AsyncConnection) -> list[Job]:
            return [job_from_row(r) for r in (await conn.execute(query)).mappings()]

        return await self._read(read)

    async def pending_count(self) -> int:
        async def read(conn: AsyncConnection) -> int:
            result = await conn.exec_driver_sql(
                "SELECT count(*) FROM jobs WHERE status IN ('queued', 'running')"
            )
            return int(result.scalar_one())

        return await self._read(read)

    async def holders(self, keys: Sequence[str]) -> dict[str, int]:
        if not keys:
            return {}

        async def read(conn: AsyncConnection) -> dict[str, int]:
            rows = await conn.execute(sql.HOLDERS, {"keys": json.dumps(list(keys))})
            return {r[0]: r[1] for r in rows}

        return await self._read(read)

    async def oldest_queued(self) -> datetime | None:
        async def read(conn: AsyncConnection) -> float | None:
            value = (
                await conn.exec_driver_sql(
                    "SELECT min(created_at) FROM jobs INDEXED BY jobs_scheduled"
                    " WHERE status = 'queued'"
                )
            ).scalar()
            return None if value is None else float(value)

        ts = await self._read(read)
        return None if ts is None else datetime.fromtimestamp(ts, UTC)

    async def apply(self, changes: Sequence[Change]) -> list[int]:
        if not changes:
            return []
        rows = json.dumps([_common.change_row(c) for c in changes])

        async def write(conn: AsyncConnection) -> list[int]:
            now = time.time()
            written = (await conn.execute(sql.APPLY, {"changes": rows, "now": now})).all()
            applied = [r[0] for r in written]
            parents = final_parents(written)
            if parents:
                woken.extend(await resolve(SQLiteDependencies(conn, now), parents))
            if applied and any(c.status in c.expect for c in changes):
                await conn.execute(
                    sql.ACTIONS, {"changes": rows, "applied": json.dumps(applied), "now": now}
                )
            return applied

        woken: list[JobStatus] = []  # the statuses that resolved jobs took
        applied = await self._write(write)
        self.written([*_common.statuses_of(changes, applied), *woken], events=bool(applied))
        return sorted(applied)

    async def events_after(
        self, seq: int, *, job_id: int | None = None, limit: int = 1000
    ) -> list[JobEvent]:
        params: dict[str, object] = {"seq": seq, "limit": limit}
        statement = sql.EVENTS_AFTER
        if job_id is not None:
            params["job_id"] = job_id
            statement = sql.EVENTS_OF_JOB_AFTER
        rows = await self._statement(statement, params, write=False)
        return [event_from_row(dict(zip(sql.EVENT_COLUMNS, r, strict=True))) for r in rows]

    async def last_seq(self) -> int:
        rows = await self._statement(sql.LAST_SEQ, {}, write=False)
        return int(rows[0][0])
