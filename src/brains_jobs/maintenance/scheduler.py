"""The scheduler: the leader enqueues the jobs of recurring schedules as their ticks come.

Every pass (about every second, and right at the next tick when one is due within the
second) it reads the schedules whose next tick has come and decides, here in Python,
what becomes of each tick from there to now (`plan`):

- a tick found within the schedule's `grace` (60 s by default) is on time: it runs;
- older ticks passed while no scheduler ran. `missed="skip"`: none runs; `"latest"`:
  the newest of them runs, unless a tick on time runs anyway; `"all"`: each runs, up to
  the newest `MISSED_BOUND` (100); the others are recorded `missed`;
- while the schedule is paused, its ticks are recorded `skipped`.

The store applies each decision in one transaction (`Schedules.record_ticks`): the
schedule moves on, every tick is recorded with its outcome, and each tick that runs gets
one job whose unique key is the tick (`schedule:<name>:<tick>`), so that a leader change
or a crash half-way never doubles or loses a tick. A long backlog is worked off in
chunks of `CHUNK` ticks.

When it starts, the scheduler writes the schedules of the job definitions it knows
(`@bj.job(..., schedule=...)`) as `job:<type>`, with the input model's defaults, and
removes those whose definition no longer has a schedule.

`run_once(ctx, now)` takes the time to decide at, so that tests can drive the clock.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import anyio

from ..enqueueing import Enqueuer
from ..exceptions import BrainsJobsError
from ..metrics import COUNTS
from ..payloads import dump_model
from ..schedules import MISSED_BOUND, first_at_or_after, tick_key, tick_text
from ..store.records import NewJob
from ..store.schedules import NewSchedule, StoredSchedule, TickBatch, TickDecision

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..config import Settings
    from ..schedules import Schedule
    from .service import MaintenanceContext

logger = logging.getLogger("brains_jobs.maintenance")

#: Ticks of one schedule decided in one transaction.
CHUNK = 1000
#: Schedules read per query; chunks of backlog worked off per pass.
BATCH = 100
ROUNDS = 10
#: Each schedule keeps the record of its newest `KEEP_TICKS` ticks; older ones are
#: deleted every `TRIM_INTERVAL` seconds.
KEEP_TICKS = 10_000
TRIM_INTERVAL = 300.0
#: Definition-level schedules are named after their job type.
DEFINITION_PREFIX = "job:"


@dataclass(frozen=True, slots=True)
class Plan:
    """The outcome of each tick from a schedule's next one up to now (or the first
    `CHUNK` of them), and the first tick left for later (`next_run_at`).
    """

    ticks: tuple[tuple[datetime, str, str | None], ...]
    next_run_at: datetime | None
    complete: bool  # every due tick is in `ticks`


def plan(
    spec: Schedule,
    start: datetime,
    now: datetime,
    *,
    paused: bool = False,
    chunk: int = CHUNK,
    bound: int = MISSED_BOUND,
) -> Plan:
    """Decide the ticks of `spec` from `start` (its next tick) up to `now`."""
    due: list[datetime] = []
    following: datetime | None = start
    while following is not None and following <= now and len(due) < chunk + max(bound, 1):
        due.append(following)
        following = spec.next_after(following)
    complete = following is None or following > now
    if not complete:
        # More ticks follow than this chunk holds: none of these is the newest missed.
        following, due = due[chunk], due[:chunk]
    if paused:
        decided = tuple((t, "skipped", "the schedule was paused") for t in due)
        return Plan(decided, following, complete)
    grace = timedelta(seconds=spec.grace)
    late = [t for t in due if now - t > grace]
    on_time = len(due) - len(late)
    chosen: set[datetime] = set()
    if complete and late:
        if spec.missed == "all":
            chosen = set(late[-bound:])
        elif spec.missed == "latest" and not on_time:
            chosen = {late[-1]}
    ticks: list[tuple[datetime, str, str | None]] = []
    for t in due:
        if now - t <= grace:
            ticks.append((t, "enqueued", None))
            continue
        lateness = f"{(now - t).total_seconds():.0f}s late"
        if t in chosen:
            ticks.append((t, "enqueued", f"{lateness} (missed={spec.missed})"))
        else:
            reason = f"passed while no scheduler ran (found {lateness}; missed={spec.missed})"
            ticks.append((t, "missed", reason))
    return Plan(tuple(ticks), following, complete)


class Scheduler:
    """Enqueues the jobs of due ticks (see the module docstring)."""

    name = "scheduler"
    leader_only = True

    def __init__(
        self, *, clock: Callable[[], datetime] | None = None, interval: float = 1.0
    ) -> None:
        self.clock = clock or _utcnow
        self._interval = interval
        self._synced = False
        self._trimmed_at: float | None = None

    def interval(self, settings: Settings) -> float:
        return self._interval

    async def run_once(self, ctx: MaintenanceContext, now: datetime | None = None) -> int:
        """One pass at `now` (default: the clock, after waiting up to one interval for
        the next tick); returns how many ticks it recorded.
        """
        due_soon = True
        if now is None:
            due_soon = await self._wait_for_tick(ctx)
            now = self.clock()
        if not self._synced:
            await self.sync_definitions(ctx, now)
            self._synced = due_soon = True
        handled = 0
        enqueuer = Enqueuer(ctx.registry, max_payload=ctx.settings.max_payload)
        for _ in range(ROUNDS if due_soon else 0):
            due = await ctx.store.due_schedules(now, BATCH)
            more = len(due) == BATCH
            for stored in due:
                try:
                    recorded, complete = await self.advance(ctx, enqueuer, stored, now)
                except Exception:
                    logger.exception("scheduler: schedule %r failed; trying again", stored.name)
                    continue
                handled += recorded
                more = more or not complete
            if not more:
                break
        if self._trimmed_at is None or time.monotonic() - self._trimmed_at > TRIM_INTERVAL:
            self._trimmed_at = time.monotonic()
            await ctx.store.trim_ticks(KEEP_TICKS)
        return handled

    async def _wait_for_tick(self, ctx: MaintenanceContext) -> bool:
        """Sleep until the next tick due within one interval; False when none is (then
        nothing is due now either, and the pass has nothing to read).
        """
        now = self.clock()
        soon = await ctx.store.due_schedules(now + timedelta(seconds=self._interval), 1)
        if not soon:
            return False
        if soon[0].next_run_at is not None and soon[0].next_run_at > now:
            # A little after it: a timer that fires early would find nothing due.
            await anyio.sleep((soon[0].next_run_at - now).total_seconds() + 0.01)
        return True

    async def advance(
        self,
        ctx: MaintenanceContext,
        enqueuer: Enqueuer,
        stored: StoredSchedule,
        now: datetime,
    ) -> tuple[int, bool]:
        """Decide and record the due ticks of one schedule: (ticks recorded, whether
        every due tick was decided).
        """
        if stored.next_run_at is None:
            return 0, True
        decided = plan(stored.schedule.spec, stored.next_run_at, now, paused=stored.paused)
        template: NewJob | str | None = None
        decisions = []
        for tick, outcome, detail in decided.ticks:
            if outcome != "enqueued":
                decisions.append(TickDecision(tick, outcome, detail))
                continue
            if template is None:
                template = _template(enqueuer, stored)
            if isinstance(template, str):
                decisions.append(TickDecision(tick, "skipped", template))
                continue
            key = tick_key(stored.name, tick)
            job = dataclasses.replace(template, unique_key=key, unique_keep=True)
            decisions.append(TickDecision(tick, "enqueued", detail, job))
        batch = TickBatch(stored.name, stored.version, tuple(decisions), decided.next_run_at)
        recorded = await ctx.store.record_ticks(batch)
        if recorded is None:  # another scheduler, or a change, moved it on first
            return 0, False
        if isinstance(template, NewJob):
            made = sum(1 for t in recorded if t.outcome == "enqueued" and t.job_id is not None)
            COUNTS.add_inserted([template] * made)
        for t in recorded:
            if t.outcome == "enqueued" and t.detail is None:
                logger.debug("scheduler: %s %s: job %s", t.schedule, tick_text(t.tick), t.job_id)
            else:
                logger.info(
                    "scheduler: %s %s %s%s",
                    t.schedule,
                    tick_text(t.tick),
                    t.outcome,
                    f" ({t.detail})" if t.detail else "",
                )
        return len(recorded), decided.complete

    async def sync_definitions(self, ctx: MaintenanceContext, now: datetime) -> list[str]:
        """Write the schedules of the job definitions as `job:<type>`; remove those of
        known types whose definition has none. Returns the names written.
        """
        written = []
        for definition in ctx.registry:
            spec = definition.schedule
            if spec is None:
                continue
            name = DEFINITION_PREFIX + definition.name
            try:
                data = dump_model(definition.input_model())
            except (ValueError, BrainsJobsError) as exc:
                logger.error("scheduler: cannot schedule %s: its input %s", name, exc)
                continue
            await ctx.store.put_schedule(
                NewSchedule(
                    name=name,
                    job_type=definition.name,
                    spec=spec,
                    queue=definition.queue,
                    priority=definition.priority,
                    max_attempts=definition.max_attempts,
                    input=data,
                    source="definition",
                    next_run_at=first_at_or_after(spec, now),
                )
            )
            written.append(name)
        stale = [
            s.name
            for s in await ctx.store.list_schedules()
            if s.schedule.source == "definition"
            and s.schedule.job_type in ctx.registry
            and s.name not in written
        ]
        if stale:
            await ctx.store.delete_schedules(stale)
            logger.info("scheduler: removed %s (no longer on their job types)", stale)
        return written


def _template(enqueuer: Enqueuer, stored: StoredSchedule) -> NewJob | str:
    """The job a tick of `stored` enqueues (without its key), validated by the job
    type's definition when this process knows it; or why no job can be made.
    """
    s = stored.schedule
    tags: list[str] = json.loads(s.tags)
    metadata: dict[str, Any] = json.loads(s.metadata)
    if s.job_type not in enqueuer.registry:
        return NewJob(
            type=s.job_type,
            queue=s.queue,
            priority=s.priority,
            input=s.input,
            max_attempts=s.max_attempts,
            tags=tuple(tags),
            metadata=metadata,
            owner=s.owner,
        )
    options = {
        "queue": s.queue,
        "priority": s.priority,
        "max_attempts": s.max_attempts,
        "tags": tags,
        "metadata": metadata,
        "owner": s.owner,
    }
    try:
        _, job = enqueuer.prepare(s.job_type, json.loads(s.input), options)
    except BrainsJobsError as exc:
        return f"no job: {exc}"
    return job


def _utcnow() -> datetime:
    return datetime.now(UTC)
