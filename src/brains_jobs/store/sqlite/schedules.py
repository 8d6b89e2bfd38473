"""The SQLite store's schedules role: recurring jobs and the record of their ticks.

A batch of ticks is one `BEGIN IMMEDIATE` transaction: the schedule's version is checked
and bumped first, so a second scheduler that decided the same ticks finds it moved on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, text

from ...models import JobStatus
from ...schedules import Tick
from ..schedules import (
    NewSchedule,
    StoredSchedule,
    TickBatch,
    schedule_from,
    settle,
    tick_from,
    ticks_query,
)
from ..tables import schedules
from .connection import SQLiteBase

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

_TIMING = ("kind", "expr", "timezone", "interval_seconds", "anchor")

PUT = text(f"""
INSERT INTO schedules (name, job_type, kind, expr, timezone, interval_seconds, anchor, missed,
                       grace, queue, priority, max_attempts, input, tags, metadata, owner,
                       source, paused, next_run_at, version, created_at, updated_at)
VALUES (:name, :job_type, :kind, :expr, :timezone, :interval_seconds, :anchor, :missed,
        :grace, :queue, :priority, :max_attempts, :input, :tags, :metadata, :owner,
        :source, 0, :next_run_at, 1, :now, :now)
ON CONFLICT (name) DO UPDATE SET
    next_run_at = CASE WHEN {" AND ".join(f"schedules.{c} IS excluded.{c}" for c in _TIMING)}
                       THEN schedules.next_run_at ELSE excluded.next_run_at END,
    job_type = excluded.job_type, kind = excluded.kind, expr = excluded.expr,
    timezone = excluded.timezone, interval_seconds = excluded.interval_seconds,
    anchor = excluded.anchor, missed = excluded.missed, grace = excluded.grace,
    queue = excluded.queue, priority = excluded.priority,
    max_attempts = excluded.max_attempts, input = excluded.input, tags = excluded.tags,
    metadata = excluded.metadata, owner = excluded.owner, source = excluded.source,
    version = schedules.version + 1, updated_at = excluded.updated_at
RETURNING version
""")

ADVANCE = text("""
UPDATE schedules SET next_run_at = :next_run_at, version = version + 1, updated_at = :now
 WHERE name = :name AND version = :version
RETURNING version
""")

RECORD = text("""
INSERT INTO schedule_ticks (schedule, tick, outcome, detail, recorded_at)
SELECT :name, t.value ->> 0, t.value ->> 1, t.value ->> 2, :now FROM json_each(:ticks) AS t
 WHERE true
ON CONFLICT (schedule, tick) DO NOTHING
RETURNING tick
""")

SETTLE = text("""
UPDATE schedule_ticks
   SET job_id = s.value ->> 1, outcome = s.value ->> 2, detail = s.value ->> 3
  FROM json_each(:rows) AS s
 WHERE schedule = :name AND tick = s.value ->> 0
""")

LAST_RUN = text("""
UPDATE schedules SET last_run_at = :tick, last_job_id = :job_id
 WHERE name = :name AND (last_run_at IS NULL OR last_run_at <= :tick)
""")

TRIM = text("""
DELETE FROM schedule_ticks
 WHERE rowid IN (SELECT rowid FROM (
         SELECT rowid, row_number() OVER (PARTITION BY schedule ORDER BY tick DESC) AS n
           FROM schedule_ticks) WHERE n > :keep)
""")


_COLUMNS = tuple(c.name for c in schedules.columns)

DUE = text(
    f"SELECT {', '.join(_COLUMNS)} FROM schedules"
    " WHERE next_run_at IS NOT NULL AND next_run_at <= :until"
    " ORDER BY next_run_at, name LIMIT :limit"
)


class SQLiteSchedules(SQLiteBase):
    """Schedules on SQLite."""

    async def put_schedule(self, schedule: NewSchedule) -> bool:
        params = _epochs(schedule.columns())
        params["now"] = time.time()

        async def write(conn: AsyncConnection) -> bool:
            version = (await conn.execute(PUT, params)).scalar_one()
            return int(version) == 1

        return await self._write(write)

    async def list_schedules(self, names: Sequence[str] | None = None) -> list[StoredSchedule]:
        query = select(schedules).order_by(schedules.c.name)
        if names is not None:
            query = query.where(schedules.c.name.in_(list(names)))

        async def read(conn: AsyncConnection) -> list[StoredSchedule]:
            return [schedule_from(r) for r in (await conn.execute(query)).mappings()]

        return await self._read(read)

    async def due_schedules(self, until: datetime, limit: int) -> list[StoredSchedule]:
        # The leader's scheduler asks once a second: a text statement on the reader.
        params = {"until": until.timestamp(), "limit": limit}
        rows = await self._statement(DUE, params, write=False)
        return [schedule_from(dict(zip(_COLUMNS, r, strict=True))) for r in rows]

    async def record_ticks(self, batch: TickBatch) -> list[Tick] | None:
        advance = {
            "name": batch.schedule,
            "version": batch.version,
            "next_run_at": _epoch(batch.next_run_at),
        }
        ticks = json.dumps([[d.tick.timestamp(), d.outcome, d.detail] for d in batch.ticks])

        async def write(conn: AsyncConnection) -> list[Tick] | None:
            now = time.time()
            if (await conn.execute(ADVANCE, {**advance, "now": now})).first() is None:
                return None
            if not batch.ticks:
                return []
            params = {"name": batch.schedule, "ticks": ticks, "now": now}
            recorded = {_at(r[0]) for r in await conn.execute(RECORD, params)}
            wanted = [d.job for d in batch.ticks if d.tick in recorded and d.job is not None]
            enqueued = await self.enqueue(wanted, connection=conn) if wanted else []
            settled = settle(batch, recorded, enqueued)
            rows = [
                [d.tick.timestamp(), job_id, outcome, detail]
                for d, job_id, outcome, detail in settled
                if job_id is not None
            ]
            if rows:
                await conn.execute(SETTLE, {"name": batch.schedule, "rows": json.dumps(rows)})
            ran = [(d.tick, job_id) for d, job_id, outcome, _ in settled if outcome == "enqueued"]
            if ran:
                tick, job_id = max(ran)
                params = {"name": batch.schedule, "tick": tick.timestamp(), "job_id": job_id}
                await conn.execute(LAST_RUN, params)
            at = datetime.fromtimestamp(now, UTC)
            return [
                Tick(
                    schedule=batch.schedule,
                    tick=d.tick,
                    outcome=outcome,
                    job_id=job_id,
                    detail=detail,
                    recorded_at=at,
                )
                for d, job_id, outcome, detail in settled
            ]

        result = await self._write(write)
        if result and any(t.outcome == "enqueued" for t in result):
            self.written([JobStatus.QUEUED])
        return result

    async def schedule_ticks(
        self, name: str, *, limit: int, before: datetime | None = None
    ) -> list[Tick]:
        query = ticks_query(name, limit, before)

        async def read(conn: AsyncConnection) -> list[Tick]:
            return [tick_from(r) for r in (await conn.execute(query)).mappings()]

        return await self._read(read)

    async def pause_schedule(self, name: str, paused: bool) -> bool:
        params = {"name": name, "paused": paused, "now": time.time()}

        async def write(conn: AsyncConnection) -> bool:
            statement = text(
                "UPDATE schedules SET paused = :paused, version = version + 1,"
                " updated_at = :now WHERE name = :name RETURNING name"
            )
            return (await conn.execute(statement, params)).first() is not None

        return await self._write(write)

    async def delete_schedules(self, names: Sequence[str]) -> list[str]:
        if not names:
            return []
        params = {"names": json.dumps(list(names))}

        async def write(conn: AsyncConnection) -> list[str]:
            await conn.execute(
                text(
                    "DELETE FROM schedule_ticks WHERE schedule IN (SELECT value FROM"
                    " json_each(:names))"
                ),
                params,
            )
            rows = await conn.execute(
                text(
                    "DELETE FROM schedules WHERE name IN (SELECT value FROM json_each(:names))"
                    " RETURNING name"
                ),
                params,
            )
            return sorted(r[0] for r in rows)

        return await self._write(write)

    async def trim_ticks(self, keep: int) -> int:
        async def write(conn: AsyncConnection) -> int:
            return (await conn.execute(TRIM, {"keep": keep})).rowcount or 0

        return await self._write(write)


def _epoch(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _epochs(columns: dict[str, Any]) -> dict[str, Any]:
    return {k: _epoch(v) if isinstance(v, datetime) else v for k, v in columns.items()}


def _at(value: Any) -> datetime:
    return datetime.fromtimestamp(float(value), UTC)
