"""Recurring jobs: add, list, pause, resume and remove schedules, and read their ticks.

The leader's scheduler (`brains_jobs.maintenance.scheduler`) enqueues their jobs; these
methods only write and read the schedules, which live in the database.
"""

from __future__ import annotations

import builtins
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from ..definitions import JobDefinition
from ..durations import parse_seconds
from ..exceptions import ConfigurationError, InvalidJobOption
from ..maintenance.scheduler import DEFINITION_PREFIX
from ..schedules import (
    DEFAULT_GRACE,
    Cron,
    Every,
    Schedule,
    ScheduleInfo,
    Tick,
    check_name,
    check_schedule,
    first_at_or_after,
)
from ..store.schedules import NewSchedule
from .base import RuntimeBase

#: The enqueue options a schedule's jobs may take.
OPTIONS = frozenset({"queue", "priority", "max_attempts", "tags", "metadata", "owner"})


class SchedulesMixin(RuntimeBase):
    """`schedule`, `schedules`, `schedule_ticks`, `unschedule`, `pause_schedule`,
    `resume_schedule`.
    """

    async def schedule(
        self,
        name: str,
        job: JobDefinition[Any, Any] | str,
        inp: Any,
        *,
        cron: str | None = None,
        every: timedelta | float | None = None,
        schedule: Schedule | None = None,
        timezone: str = "UTC",
        missed: str = "latest",
        grace: float | timedelta = DEFAULT_GRACE,
        anchor: datetime | None = None,
        start: datetime | None = None,
        **options: Any,
    ) -> ScheduleInfo:
        """Enqueue a job of type `job` with input `inp` on every tick of a schedule named
        `name`, from now (or `start`) on: `cron` (an expression in `timezone`), `every`
        (a `timedelta` or seconds, counted from `anchor`, the Unix epoch by default) or
        `schedule` (a `bj.Cron` or `bj.Every`).

        `missed` says what becomes of ticks that passed while no scheduler ran (found
        more than `grace` late): `skip`, `latest` (the default: one job for the newest)
        or `all`. Options for the jobs: `queue`, `priority`, `max_attempts`, `tags`,
        `metadata`, `owner`.

        A schedule of that name is replaced (timing, job, options); it keeps its pause,
        its ticks, and its next tick unless the timing changed. The input is validated
        now. Returns the schedule as stored.
        """
        check_name(name)
        if name.startswith(DEFINITION_PREFIX):
            raise ConfigurationError(
                f"schedule {name!r}: names starting with {DEFINITION_PREFIX!r} belong to"
                " the schedules of job definitions (@bj.job(..., schedule=...))"
            )
        spec = _spec(
            cron, every, schedule, timezone=timezone, missed=missed, grace=grace, anchor=anchor
        )
        unknown = set(options) - OPTIONS
        if unknown:
            raise InvalidJobOption(
                sorted(unknown)[0],
                f"not an option of scheduled jobs; those are {', '.join(sorted(OPTIONS))}",
            )
        definition, template = self.enqueuer.prepare(job, inp, options)
        begin = datetime.now(UTC) if start is None else start
        await self.store.put_schedule(
            NewSchedule(
                name=name,
                job_type=definition.name,
                spec=spec,
                queue=template.queue,
                priority=template.priority,
                max_attempts=template.max_attempts,
                input=template.input,
                tags=json.dumps(list(template.tags)),
                metadata=json.dumps(template.metadata),
                owner=template.owner,
                next_run_at=first_at_or_after(spec, begin),
            )
        )
        (stored,) = await self.store.list_schedules([name])
        return stored.info()

    async def schedules(self) -> builtins.list[ScheduleInfo]:
        """Every schedule, by name: its job type and timing, next and last run, and
        whether it is paused.
        """
        return [s.info() for s in await self.store.list_schedules()]

    async def schedule_ticks(
        self, name: str, *, limit: int = 100, before: datetime | None = None
    ) -> builtins.list[Tick]:
        """What became of the latest `limit` ticks of schedule `name` (before `before`,
        if given), newest first: `enqueued` with the job's id, `skipped` or `missed`,
        with the reason in `detail`.
        """
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 10_000:
            raise InvalidJobOption("limit", f"must be from 1 to 10000, got {limit!r}")
        return await self.store.schedule_ticks(name, limit=limit, before=before)

    async def unschedule(self, name: str) -> bool:
        """Remove schedule `name` and the record of its ticks (its jobs stay); False
        when there was none. A job definition's schedule comes back when a scheduler
        next starts, unless the definition no longer has one: pause it instead.
        """
        return bool(await self.store.delete_schedules([name]))

    async def pause_schedule(self, name: str) -> bool:
        """Stop enqueueing the jobs of schedule `name`: its ticks are recorded `skipped`
        until it is resumed. False when there is no such schedule.
        """
        return await self.store.pause_schedule(name, True)

    async def resume_schedule(self, name: str) -> bool:
        """Enqueue the jobs of schedule `name` again, from its next tick on. False when
        there is no such schedule.
        """
        return await self.store.pause_schedule(name, False)


def _spec(
    cron: str | None,
    every: timedelta | float | None,
    schedule: Schedule | None,
    *,
    timezone: str,
    missed: str,
    grace: float | timedelta,
    anchor: datetime | None,
) -> Schedule:
    pairs = (("cron", cron), ("every", every), ("schedule", schedule))
    given = [k for k, v in pairs if v is not None]
    if len(given) != 1:
        both = f", not {' and '.join(given)}" if given else ""
        raise ConfigurationError(f"give one of cron=, every= or schedule={both}")
    if schedule is not None:
        return check_schedule(schedule)
    seconds = grace.total_seconds() if isinstance(grace, timedelta) else grace
    if cron is not None:
        return Cron(cron, timezone=timezone, missed=missed, grace=seconds)
    assert every is not None
    interval = every if isinstance(every, timedelta) else timedelta(seconds=parse_seconds(every))
    return Every(interval, anchor=anchor, missed=missed, grace=seconds)
