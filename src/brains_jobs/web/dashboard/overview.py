"""The overview and the pages about the system: workers, queues, schedules, limits and
plugins.

Counts by status come from `Runtime.stats()` (exact). What it does not count (jobs by
queue, the oldest queued job of each queue, the jobs finished in the last hour) is
computed from bounded samples of `Runtime.list()`: the newest `SAMPLE` jobs of each
status looked at; a figure drawn from a full sample is shown with a `+`. A `user` sees
figures about its own jobs only.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from ...models import Job, JobStatus, Stats, WorkerInfo
from ...runtime import Runtime
from ..auth import Principal
from ..dependencies import RuntimeDep
from .render import PREFIX, page, viewer

router = APIRouter(prefix=PREFIX, include_in_schema=False)
Viewer = Annotated[Principal, Depends(viewer)]

#: How many jobs of one status the overview looks at, at most.
SAMPLE = 1000
#: The throughput chart: this many buckets over the last hour.
BUCKETS = 12


@dataclass
class QueueRow:
    """A queue as the dashboard shows it."""

    name: str
    queued: int = 0
    running: int = 0
    oldest_queued: datetime | None = None
    types: list[str] = field(default_factory=list)
    workers: list[str] = field(default_factory=list)


@dataclass
class Throughput:
    """Jobs finished in the last hour, by outcome and in `BUCKETS` slices."""

    succeeded: int = 0
    failed: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * BUCKETS)
    capped: bool = False

    def bars(self, width: int = 240, height: int = 40) -> list[dict[str, float]]:
        """The chart's bars: x, y, width and height in an SVG of `width` by `height`."""
        top = max(self.buckets) or 1
        step = width / BUCKETS
        found = []
        for i, n in enumerate(self.buckets):
            h = round(height * n / top, 1)
            found.append({"x": round(i * step + 1, 1), "y": height - h, "w": step - 2, "h": h})
        return found


def _owner(principal: Principal) -> str | None:
    return None if principal.sees_all else principal.user


async def queue_rows(
    rt: Runtime, principal: Principal, workers: list[WorkerInfo]
) -> tuple[list[QueueRow], bool]:
    """Each queue known to a job type, a live worker or a queued or running job, with
    its queued and running counts and its oldest queued job; True when a sample was full.
    """
    owner = _owner(principal)
    queued = await rt.list(status=JobStatus.QUEUED, owner=owner, limit=SAMPLE)
    running = await rt.list(status=JobStatus.RUNNING, owner=owner, limit=SAMPLE)
    names = {d.queue for d in rt.registry} | {q for w in workers for q in w.queues}
    names |= {j.queue for j in (*queued.jobs, *running.jobs)}
    rows = {
        name: QueueRow(
            name=name,
            types=sorted(d.name for d in rt.registry if d.queue == name),
            workers=[w.id for w in workers if not w.queues or name in w.queues],
        )
        for name in sorted(names)
    }
    for job in queued.jobs:
        row = rows[job.queue]
        row.queued += 1
        if row.oldest_queued is None or job.run_at < row.oldest_queued:
            row.oldest_queued = job.run_at
    for job in running.jobs:
        rows[job.queue].running += 1
    capped = queued.next_cursor is not None or running.next_cursor is not None
    return list(rows.values()), capped


async def throughput(rt: Runtime, principal: Principal, now: datetime) -> Throughput:
    """The jobs that finished in the hour before `now` (among those created in the six
    hours before it).
    """
    since = now - timedelta(hours=1)
    result = Throughput()
    for status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
        found = await rt.list(
            status=status,
            owner=_owner(principal),
            created_after=now - timedelta(hours=6),
            limit=SAMPLE,
        )
        result.capped = result.capped or found.next_cursor is not None
        for job in found.jobs:
            if job.finished_at is None or job.finished_at < since:
                continue
            if status is JobStatus.SUCCEEDED:
                result.succeeded += 1
            else:
                result.failed += 1
            slot = int((job.finished_at - since).total_seconds() // (3600 / BUCKETS))
            result.buckets[min(max(slot, 0), BUCKETS - 1)] += 1
    return result


async def status_counts(
    rt: Runtime, principal: Principal, stats: Stats | None
) -> tuple[dict[str, int], bool]:
    """Jobs by status: every job for admins and viewers (exact, from `stats`), the
    newest `SAMPLE` of its own for a user.
    """
    if stats is not None:
        return {s.value: stats.by_status.get(s, 0) for s in JobStatus}, False
    found = await rt.list(owner=principal.user, limit=SAMPLE)
    counts = Counter(job.status.value for job in found.jobs)
    return {s.value: counts.get(s.value, 0) for s in JobStatus}, found.next_cursor is not None


@router.get("/")
async def overview(request: Request, rt: RuntimeDep, principal: Viewer) -> Response:
    """Counts by status and queue, the last hour's throughput, recent failures, the
    oldest queued job of each queue, and the live workers.
    """
    now = datetime.now(UTC)
    stats = await rt.stats() if principal.sees_all else None
    workers = await rt.workers()
    counts, counts_capped = await status_counts(rt, principal, stats)
    queues, queues_capped = await queue_rows(rt, principal, workers)
    failures = await rt.list(status=JobStatus.FAILED, owner=_owner(principal), limit=10)
    return page(
        request,
        "overview.html",
        principal,
        nav="overview",
        counts=counts,
        counts_capped=counts_capped,
        queues=queues,
        queues_capped=queues_capped,
        throughput=await throughput(rt, principal, now),
        failures=[(job, _last_error(job)) for job in failures.jobs],
        workers=workers,
        unserved=stats.unserved if stats else [],
        health=await rt.health() if principal.sees_all else None,
        types=[d.name for d in rt.registry],
    )


def _last_error(job: Job) -> str:
    if job.errors:
        last = job.errors[-1]
        return f"{last.type}: {last.message}"
    return job.progress_message or ""


@router.get("/workers")
async def workers_page(request: Request, rt: RuntimeDep, principal: Viewer) -> Response:
    """The live workers."""
    return page(request, "workers.html", principal, nav="workers", workers=await rt.workers())


@router.get("/queues")
async def queues_page(request: Request, rt: RuntimeDep, principal: Viewer) -> Response:
    """Each queue: its job types, workers, queued and running jobs, oldest queued job."""
    queues, capped = await queue_rows(rt, principal, await rt.workers())
    return page(request, "queues.html", principal, nav="queues", queues=queues, capped=capped)


@router.get("/schedules")
async def schedules_page(request: Request, rt: RuntimeDep, principal: Viewer) -> Response:
    """The recurring jobs, their next runs and their latest ticks (a user: its own)."""
    rows: list[dict[str, Any]] = []
    for info in await rt.schedules():
        if not principal.sees_all and info.owner != principal.user:
            continue
        ticks = await rt.schedule_ticks(info.name, limit=5) if len(rows) < 50 else []
        rows.append({"info": info, "describe": info.schedule.describe(), "ticks": ticks})
    return page(request, "schedules.html", principal, nav="schedules", schedules=rows)


@router.get("/limits")
async def limits_page(request: Request, rt: RuntimeDep, principal: Viewer) -> Response:
    """Every limit key: its concurrency and rate, and how many of its jobs run now."""
    return page(request, "limits.html", principal, nav="limits", limits=await rt.limits())


@router.get("/plugins")
async def plugins_page(request: Request, rt: RuntimeDep, principal: Viewer) -> Response:
    """The plugins this server loaded, with their job types, and those that failed."""
    return page(
        request,
        "plugins.html",
        principal,
        nav="plugins",
        plugins=rt.host.plugins(),
        failures=rt.host.failures,
        definitions=list(rt.registry),
    )
