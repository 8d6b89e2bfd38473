"""The PostgreSQL store's admin and event-log roles: reading jobs and applying changes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.exc import DBAPIError

from ...exceptions import StoreError
from ...models import Job, JobEvent, JobPage, JobStatus, Stats
from .. import _common, _queries
from .._rows import event_from_row, job_from_row
from ..dependencies import final_parents, resolve
from ..records import Change, JobFilter
from . import sql, sql_changes
from .dependencies import PostgresDependencies
from .queue import PostgresQueue

_APPLY_COLUMNS = (
    "id",
    "expect",
    "status",
    "token",
    "message",
    "actor",
    "error",
    "run_in",
    "output",
    "attempts_delta",
    "max_attempts",
    "crashes_delta",
    "mark_start",
    "request_cancel",
    "queue",
    "priority",
    "final",
    "unchanged",
    "action",
    "input",
    "version",
    "progress",
    "lease_for",
    "track_ttl",
    "usage",
    "new_token",
    "callback",
)


class PostgresAdmin(PostgresQueue):
    """Reads, changes and the event log on PostgreSQL."""

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        self._sql_apply = self.sql(sql_changes.APPLY)
        self._sql_get = self.sql("SELECT * FROM {{schema}}.jobs WHERE id = $1")
        self._sql_stats = self.sql(
            "SELECT type, status, count(*) FROM {{schema}}.jobs GROUP BY 1, 2"
        )
        self._sql_usage = self.sql(_queries.USAGE["postgresql"])
        self._sql_durations = self.sql(
            _queries.DURATIONS["postgresql"].replace("{sample}", str(Stats.SAMPLE))
        )
        self._sql_get_many = self.sql(
            "SELECT * FROM {{schema}}.jobs WHERE id = ANY($1::bigint[]) ORDER BY id"
        )
        self._sql_pending = self.sql(
            "SELECT count(*) FROM {{schema}}.jobs WHERE status IN ('queued', 'running')"
        )
        self._sql_oldest = self.sql(sql.OLDEST_QUEUED)
        self._sql_events = self.sql("SELECT * FROM {{schema}}.events_after($1, $2, $3)")
        self._sql_horizon = self.sql("SELECT {{schema}}.events_horizon()")

    async def get(self, job_id: int) -> Job | None:
        rows = await self.read(self._sql_get, job_id)
        return job_from_row(rows[0]) if rows else None

    async def list_jobs(self, filters: JobFilter, *, limit: int, cursor: str | None) -> JobPage:
        query = _queries.list_jobs(filters, limit=limit, cursor=cursor, dialect="postgresql")
        try:
            async with self.engine.connect() as conn:
                rows = (await conn.execute(query)).mappings().all()
        except DBAPIError as exc:
            raise StoreError(f"PostgreSQL read failed: {exc.orig}") from exc
        return _queries.page([job_from_row(r) for r in rows], limit)

    async def stats(self) -> Stats:
        return _queries.stats_from_rows(
            await self.read(self._sql_stats),
            await self.read(self._sql_usage),
            await self.read(self._sql_durations),
        )

    async def get_many(self, ids: Sequence[int]) -> list[Job]:
        if not ids:
            return []
        return [job_from_row(r) for r in await self.read(self._sql_get_many, list(ids))]

    async def pending_count(self) -> int:
        return int((await self.read(self._sql_pending))[0][0])

    async def holders(self, keys: Sequence[str]) -> dict[str, int]:
        if not keys:
            return {}
        return {r[0]: r[1] for r in await self.read(self._sql_find_keys, list(keys))}

    async def oldest_queued(self) -> datetime | None:
        value: datetime | None = (await self.read(self._sql_oldest))[0][0]
        return value

    async def apply(self, changes: Sequence[Change]) -> list[int]:
        if not changes:
            return []
        rows = [_common.change_row(c) for c in changes]
        for row in rows:
            row["expect"] = ",".join(row["expect"])
        args = [[row[name] for row in rows] for name in _APPLY_COLUMNS]

        async def write(conn: asyncpg.Connection) -> tuple[list[int], list[JobStatus]]:
            woken: list[JobStatus] = []
            async with conn.transaction():
                rows = await conn.fetch(self._sql_apply, *args)
                parents = final_parents(rows)
                if parents:
                    woken = await resolve(PostgresDependencies(self, conn), parents)
                return [r[0] for r in rows], woken

        applied, woken = await self.run("change", write)
        self.written([*_common.statuses_of(changes, applied), *woken], events=bool(applied))
        return sorted(applied)

    async def events_after(
        self, seq: int, *, job_id: int | None = None, limit: int = 1000
    ) -> list[JobEvent]:
        rows = await self.read(self._sql_events, seq, job_id, limit)
        return [event_from_row(r) for r in rows]

    async def last_seq(self) -> int:
        # Not max(seq): an event below it may still be in flight (see the migration).
        rows = await self.read(self._sql_horizon)
        return int(rows[0][0] or 0)
