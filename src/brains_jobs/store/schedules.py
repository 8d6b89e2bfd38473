"""The schedules role: recurring jobs and what became of each of their ticks.

Which ticks are due, which were missed and which get a job is decided in Python, by the
scheduler (`brains_jobs.maintenance.scheduler`); a store keeps the schedules and applies
a decided `TickBatch` atomically: in one transaction it advances the schedule (only if
it is still the version the decision was made on), records the ticks (a tick already
recorded is left as it is: the table's key is the schedule and the tick), and enqueues
the jobs of the ticks it recorded, each with the tick's unique key
(`schedule:<name>:<tick>`) held until the job is pruned. Two schedulers deciding the
same tick, a crash, or a new leader half-way, never make a second job nor lose a tick.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, select

from ..schedules import Cron, Every, Schedule, ScheduleInfo, Tick
from .records import Enqueued, NewJob
from .tables import schedule_ticks


@dataclass(frozen=True, slots=True)
class NewSchedule:
    """A schedule to create or replace: its timing, and the job each tick enqueues
    (`input`, `tags` and `metadata` as JSON text).
    """

    name: str
    job_type: str
    spec: Schedule
    queue: str
    priority: int
    max_attempts: int
    input: str
    tags: str = "[]"
    metadata: str = "{}"
    owner: str | None = None
    source: str = "runtime"
    #: The first tick; taken only when the schedule is new or its timing changed.
    next_run_at: datetime | None = None

    def columns(self) -> dict[str, Any]:
        """The row's columns (times as aware datetimes)."""
        spec = self.spec
        return {
            "name": self.name,
            "job_type": self.job_type,
            "kind": "cron" if isinstance(spec, Cron) else "every",
            "expr": spec.expr if isinstance(spec, Cron) else None,
            "timezone": spec.timezone if isinstance(spec, Cron) else "UTC",
            "interval_seconds": spec.seconds if isinstance(spec, Every) else None,
            "anchor": spec.anchor if isinstance(spec, Every) else None,
            "missed": spec.missed,
            "grace": float(spec.grace),
            "queue": self.queue,
            "priority": self.priority,
            "max_attempts": self.max_attempts,
            "input": self.input,
            "tags": self.tags,
            "metadata": self.metadata,
            "owner": self.owner,
            "source": self.source,
            "next_run_at": self.next_run_at,
        }


@dataclass(frozen=True, slots=True)
class StoredSchedule:
    """A schedule as read, with the `version` a `TickBatch` must name."""

    schedule: NewSchedule
    paused: bool
    next_run_at: datetime | None
    last_run_at: datetime | None
    last_job_id: int | None
    version: int
    created_at: datetime
    updated_at: datetime

    @property
    def name(self) -> str:
        """The schedule's name."""
        return self.schedule.name

    def info(self) -> ScheduleInfo:
        """The public record."""
        s = self.schedule
        return ScheduleInfo(
            name=s.name,
            job_type=s.job_type,
            schedule=s.spec,
            queue=s.queue,
            priority=s.priority,
            max_attempts=s.max_attempts,
            input=_json(s.input, None),
            tags=_json(s.tags, []),
            metadata=_json(s.metadata, {}),
            owner=s.owner,
            source="definition" if s.source == "definition" else "runtime",
            paused=self.paused,
            next_run_at=self.next_run_at,
            last_run_at=self.last_run_at,
            last_job_id=self.last_job_id,
            created_at=self.created_at,
            updated_at=self.updated_at,
        )


@dataclass(frozen=True, slots=True)
class TickDecision:
    """One tick's decided outcome: `enqueued` (with its `job`), `skipped` or `missed`."""

    tick: datetime
    outcome: str
    detail: str | None = None
    job: NewJob | None = None


@dataclass(frozen=True, slots=True)
class TickBatch:
    """Ticks of one schedule decided on its `version`, and where the schedule goes on
    from: `next_run_at`, the first tick not decided yet (None: it never ticks again).
    """

    schedule: str
    version: int
    ticks: tuple[TickDecision, ...]
    next_run_at: datetime | None


class Schedules(abc.ABC):
    """Recurring jobs: their definitions, their due ticks, and the record of each tick."""

    @abc.abstractmethod
    async def put_schedule(self, schedule: NewSchedule) -> bool:
        """Create the schedule, or replace the one with its name (timing, job, options);
        True when it was created. A replaced schedule keeps its pause, its last run and
        its ticks, and its `next_run_at` unless its timing (kind, expression, time zone,
        interval, anchor) changed.
        """

    @abc.abstractmethod
    async def list_schedules(self, names: Sequence[str] | None = None) -> list[StoredSchedule]:
        """The schedules (those named, if given), by name."""

    @abc.abstractmethod
    async def due_schedules(self, until: datetime, limit: int) -> list[StoredSchedule]:
        """Up to `limit` schedules, paused or not, whose `next_run_at` is at `until` or
        before, soonest first.
        """

    @abc.abstractmethod
    async def record_ticks(self, batch: TickBatch) -> list[Tick] | None:
        """Apply `batch` in one transaction (see the module docstring) and return the
        ticks it recorded (a tick whose job could not be inserted because another job
        holds its key is recorded `skipped`). None, with nothing written, when the
        schedule is gone or no longer at `batch.version`.
        """

    @abc.abstractmethod
    async def schedule_ticks(
        self, name: str, *, limit: int, before: datetime | None = None
    ) -> list[Tick]:
        """The latest `limit` ticks of schedule `name` (before `before`, if given),
        newest first.
        """

    @abc.abstractmethod
    async def pause_schedule(self, name: str, paused: bool) -> bool:
        """Pause or resume a schedule; False when there is none of that name."""

    @abc.abstractmethod
    async def delete_schedules(self, names: Sequence[str]) -> list[str]:
        """Delete these schedules with their ticks; return the names that existed."""

    @abc.abstractmethod
    async def trim_ticks(self, keep: int) -> int:
        """Delete the ticks of each schedule beyond its newest `keep`; return how many."""


def spec_from(row: Mapping[Any, Any]) -> Schedule:
    """The timing of a `schedules` row."""
    if row["kind"] == "cron":
        return Cron(
            str(row["expr"]),
            timezone=str(row["timezone"]),
            missed=str(row["missed"]),
            grace=float(row["grace"]),
        )
    anchor = _when(row["anchor"])
    return Every(
        timedelta(seconds=int(row["interval_seconds"])),
        anchor=anchor,
        missed=str(row["missed"]),
        grace=float(row["grace"]),
    )


def schedule_from(row: Mapping[Any, Any]) -> StoredSchedule:
    """A `StoredSchedule` from a `schedules` row (times as datetimes or epoch seconds)."""
    new = NewSchedule(
        name=row["name"],
        job_type=row["job_type"],
        spec=spec_from(row),
        queue=row["queue"],
        priority=int(row["priority"]),
        max_attempts=int(row["max_attempts"]),
        input=_text(row["input"]),
        tags=_text(row["tags"]),
        metadata=_text(row["metadata"]),
        owner=row["owner"],
        source=row["source"],
        next_run_at=_when(row["next_run_at"]),
    )
    return StoredSchedule(
        schedule=new,
        paused=bool(row["paused"]),
        next_run_at=new.next_run_at,
        last_run_at=_when(row["last_run_at"]),
        last_job_id=row["last_job_id"],
        version=int(row["version"]),
        created_at=_required(row["created_at"]),
        updated_at=_required(row["updated_at"]),
    )


def ticks_query(name: str, limit: int, before: datetime | None) -> Select[Any]:
    """The newest `limit` ticks of schedule `name` (those before `before`), newest first."""
    query = select(schedule_ticks).where(schedule_ticks.c.schedule == name)
    if before is not None:
        query = query.where(schedule_ticks.c.tick < before)
    return query.order_by(schedule_ticks.c.tick.desc()).limit(limit)


def tick_from(row: Mapping[Any, Any]) -> Tick:
    """A `Tick` from a `schedule_ticks` row."""
    return Tick(
        schedule=row["schedule"],
        tick=_required(row["tick"]),
        outcome=row["outcome"],
        job_id=row["job_id"],
        detail=row["detail"],
        recorded_at=_required(row["recorded_at"]),
    )


def settle(
    batch: TickBatch, recorded: set[datetime], enqueued: Sequence[Enqueued]
) -> list[tuple[TickDecision, int | None, str, str | None]]:
    """Pair the ticks recorded with the jobs inserted for them (in the order of
    `batch.ticks`): (decision, job id, outcome, detail). A job that was not created
    (another job holds the tick's key) makes its tick `skipped`.
    """
    rows = iter(enqueued)
    result: list[tuple[TickDecision, int | None, str, str | None]] = []
    for decision in batch.ticks:
        if decision.tick not in recorded:
            continue
        if decision.job is None:
            result.append((decision, None, decision.outcome, decision.detail))
            continue
        row = next(rows)
        if row.created:
            result.append((decision, row.id, "enqueued", decision.detail))
        else:
            detail = f"job {row.id} already holds the key {decision.job.unique_key}"
            result.append((decision, row.id, "skipped", detail))
    return result


def _json(text: str, default: Any) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return default


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _when(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromtimestamp(float(value), UTC)


def _required(value: Any) -> datetime:
    result = _when(value)
    assert result is not None
    return result
