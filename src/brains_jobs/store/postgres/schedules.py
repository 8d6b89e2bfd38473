"""The PostgreSQL store's schedules role: recurring jobs and the record of their ticks.

A batch of ticks is one transaction on the store's SQLAlchemy engine, so that its jobs
go in through the store's own `enqueue` (in that transaction). The schedule's row is
updated first, fenced by its version: a second scheduler deciding the same ticks waits
for the row, then finds it moved on and writes nothing. The transaction takes the event
fence (`events_fence()`, see the first migration) before it writes any event, as the
store's own statements do, so that live subscribers see its jobs' `queued` events.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from ...exceptions import StoreError
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
from .connection import PostgresBase

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

T = TypeVar("T")

_TIMING = ("kind", "expr", "timezone", "interval_seconds", "anchor")

PUT = f"""
INSERT INTO {{{{schema}}}}.schedules AS s
       (name, job_type, kind, expr, timezone, interval_seconds, anchor, missed, grace, queue,
        priority, max_attempts, input, tags, metadata, owner, source, next_run_at)
VALUES (:name, :job_type, :kind, :expr, :timezone, :interval_seconds, :anchor, :missed,
        :grace, :queue, :priority, :max_attempts, :input, :tags, :metadata, :owner,
        :source, :next_run_at)
ON CONFLICT (name) DO UPDATE SET
    next_run_at = CASE WHEN {
    " AND ".join(f"s.{c} IS NOT DISTINCT FROM excluded.{c}" for c in _TIMING)
}
                       THEN s.next_run_at ELSE excluded.next_run_at END,
    job_type = excluded.job_type, kind = excluded.kind, expr = excluded.expr,
    timezone = excluded.timezone, interval_seconds = excluded.interval_seconds,
    anchor = excluded.anchor, missed = excluded.missed, grace = excluded.grace,
    queue = excluded.queue, priority = excluded.priority,
    max_attempts = excluded.max_attempts, input = excluded.input, tags = excluded.tags,
    metadata = excluded.metadata, owner = excluded.owner, source = excluded.source,
    version = s.version + 1, updated_at = now()
RETURNING version
"""

ADVANCE = """
UPDATE {{schema}}.schedules SET next_run_at = :next_run_at, version = version + 1,
       updated_at = now()
 WHERE name = :name AND version = :version
RETURNING now()
"""

RECORD = """
INSERT INTO {{schema}}.schedule_ticks (schedule, tick, outcome, detail)
SELECT :name, t.tick, t.outcome, t.detail
  FROM unnest(CAST(:ticks AS timestamptz[]), CAST(:outcomes AS text[]),
              CAST(:details AS text[])) AS t(tick, outcome, detail)
ON CONFLICT (schedule, tick) DO NOTHING
RETURNING tick
"""

SETTLE = """
UPDATE {{schema}}.schedule_ticks AS t
   SET job_id = s.job_id, outcome = s.outcome, detail = s.detail
  FROM unnest(CAST(:ticks AS timestamptz[]), CAST(:ids AS bigint[]),
              CAST(:outcomes AS text[]), CAST(:details AS text[]))
       AS s(tick, job_id, outcome, detail)
 WHERE t.schedule = :name AND t.tick = s.tick
"""

LAST_RUN = """
UPDATE {{schema}}.schedules SET last_run_at = :tick, last_job_id = :job_id
 WHERE name = :name AND (last_run_at IS NULL OR last_run_at <= :tick)
"""

PAUSE = """
UPDATE {{schema}}.schedules SET paused = :paused, version = version + 1, updated_at = now()
 WHERE name = :name
RETURNING name
"""

TRIM = """
DELETE FROM {{schema}}.schedule_ticks AS t
 USING (SELECT schedule, tick,
               row_number() OVER (PARTITION BY schedule ORDER BY tick DESC) AS n
          FROM {{schema}}.schedule_ticks) AS old
 WHERE old.n > :keep AND t.schedule = old.schedule AND t.tick = old.tick
"""


class PostgresSchedules(PostgresBase):
    """Schedules on PostgreSQL."""

    async def _transaction(self, what: str, fn: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        try:
            async with self.engine.begin() as conn:
                return await fn(conn)
        except DBAPIError as exc:
            raise StoreError(f"PostgreSQL {what} failed: {exc.orig}") from exc

    async def put_schedule(self, schedule: NewSchedule) -> bool:
        statement = text(self.sql(PUT))
        params = schedule.columns()

        async def write(conn: AsyncConnection) -> bool:
            return int((await conn.execute(statement, params)).scalar_one()) == 1

        return await self._transaction("schedule", write)

    async def list_schedules(self, names: Sequence[str] | None = None) -> list[StoredSchedule]:
        query = select(schedules).order_by(schedules.c.name)
        if names is not None:
            query = query.where(schedules.c.name.in_(list(names)))

        async def read(conn: AsyncConnection) -> list[StoredSchedule]:
            return [schedule_from(r) for r in (await conn.execute(query)).mappings()]

        return await self._transaction("read", read)

    async def due_schedules(self, until: datetime, limit: int) -> list[StoredSchedule]:
        query = (
            select(schedules)
            .where(schedules.c.next_run_at.is_not(None), schedules.c.next_run_at <= until)
            .order_by(schedules.c.next_run_at, schedules.c.name)
            .limit(limit)
        )

        async def read(conn: AsyncConnection) -> list[StoredSchedule]:
            return [schedule_from(r) for r in (await conn.execute(query)).mappings()]

        return await self._transaction("read", read)

    async def record_ticks(self, batch: TickBatch) -> list[Tick] | None:
        advance = {
            "name": batch.schedule,
            "version": batch.version,
            "next_run_at": batch.next_run_at,
        }
        record = {
            "name": batch.schedule,
            "ticks": [d.tick for d in batch.ticks],
            "outcomes": [d.outcome for d in batch.ticks],
            "details": [d.detail for d in batch.ticks],
        }
        fence = any(d.job is not None for d in batch.ticks)

        async def write(conn: AsyncConnection) -> list[Tick] | None:
            if fence:  # before any event takes its number
                await conn.execute(text(self.sql("SELECT {{schema}}.events_fence()")))
            now = (await conn.execute(text(self.sql(ADVANCE)), advance)).scalar()
            if now is None:  # gone, or moved on: nothing was written
                return None
            if not batch.ticks:
                return []
            rows = await conn.execute(text(self.sql(RECORD)), record)
            recorded = {r[0] for r in rows}
            wanted = [d.job for d in batch.ticks if d.tick in recorded and d.job is not None]
            enqueued = await self.enqueue(wanted, connection=conn) if wanted else []
            settled = settle(batch, recorded, enqueued)
            changed = [s for s in settled if s[1] is not None]
            if changed:
                params = {
                    "name": batch.schedule,
                    "ticks": [d.tick for d, _, _, _ in changed],
                    "ids": [job_id for _, job_id, _, _ in changed],
                    "outcomes": [outcome for _, _, outcome, _ in changed],
                    "details": [detail for _, _, _, detail in changed],
                }
                await conn.execute(text(self.sql(SETTLE)), params)
            ran = [(d.tick, job_id) for d, job_id, outcome, _ in settled if outcome == "enqueued"]
            if ran:
                tick, job_id = max(ran)
                last: dict[str, Any] = {"name": batch.schedule, "tick": tick, "job_id": job_id}
                await conn.execute(text(self.sql(LAST_RUN)), last)
            return [
                Tick(
                    schedule=batch.schedule,
                    tick=d.tick,
                    outcome=outcome,
                    job_id=job_id,
                    detail=detail,
                    recorded_at=now,
                )
                for d, job_id, outcome, detail in settled
            ]

        result = await self._transaction("schedule ticks", write)
        if result and any(t.outcome == "enqueued" for t in result):
            self.written([JobStatus.QUEUED])
        return result

    async def schedule_ticks(
        self, name: str, *, limit: int, before: datetime | None = None
    ) -> list[Tick]:
        query = ticks_query(name, limit, before)

        async def read(conn: AsyncConnection) -> list[Tick]:
            return [tick_from(r) for r in (await conn.execute(query)).mappings()]

        return await self._transaction("read", read)

    async def pause_schedule(self, name: str, paused: bool) -> bool:
        async def write(conn: AsyncConnection) -> bool:
            rows = await conn.execute(text(self.sql(PAUSE)), {"name": name, "paused": paused})
            return rows.first() is not None

        return await self._transaction("schedule pause", write)

    async def delete_schedules(self, names: Sequence[str]) -> list[str]:
        if not names:
            return []
        params = {"names": list(names)}

        async def write(conn: AsyncConnection) -> list[str]:
            await conn.execute(
                text(
                    self.sql(
                        "DELETE FROM {{schema}}.schedule_ticks"
                        " WHERE schedule = ANY(CAST(:names AS text[]))"
                    )
                ),
                params,
            )
            rows = await conn.execute(
                text(
                    self.sql(
                        "DELETE FROM {{schema}}.schedules"
                        " WHERE name = ANY(CAST(:names AS text[])) RETURNING name"
                    )
                ),
                params,
            )
            return sorted(r[0] for r in rows)

        return await self._transaction("schedule deletion", write)

    async def trim_ticks(self, keep: int) -> int:
        async def write(conn: AsyncConnection) -> int:
            return (await conn.execute(text(self.sql(TRIM)), {"keep": keep})).rowcount or 0

        return await self._transaction("tick trimming", write)
