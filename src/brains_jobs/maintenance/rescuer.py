"""The rescuer: jobs whose worker stopped renewing their lease go back to work.

Every process that runs workers runs it (not only the leader), so a crashed worker's
jobs never wait for a leader. The decisions are made here, in Python, with each job
type's own policy, and applied in one batch write fenced by the lease token (a job whose
worker renewed in the meantime is left alone):

- the job's handler is not known to have started (it waited in the dead worker's
  buffer, or died within its first moments): back to the queue at once, and the attempt
  is given back (its allowance grows by one; attempt numbers never repeat); its next
  claimer records the start before running it, so that a job that kills its worker at
  once is recognised next time;
- its handler was running: the worker died with it. The crash is counted and the
  attempt too (`LeaseExpired`); it waits its backoff, and from now on runs alone, so
  that a crash during it is its own. After `max_crashes` such crashes it is failed for
  good as `WorkerCrashed` (a poison pill), and jobs that merely shared its workers go on;
- it was asked to cancel: it ends `cancelled`;
- it is a tracking job (worked on outside any worker) whose reporter fell silent past
  its `ttl`: it fails as `Lost` (cancelled, if it was asked to cancel).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..callbacks import callback_due, run_flagged
from ..metrics import COUNTS
from ..models import JobStatus
from ..retry import RetryPolicy
from ..store.records import Change, ExpiredJob

if TYPE_CHECKING:
    from ..config import Settings
    from ..registry import Registry
    from .service import MaintenanceContext

logger = logging.getLogger("brains_jobs.maintenance")

_RUNNING = frozenset({JobStatus.RUNNING})
_DEFAULT_POLICY = RetryPolicy()
DEFAULT_MAX_CRASHES = 3


class Rescuer:
    """Puts jobs with expired leases back to work (see the module docstring)."""

    name = "rescuer"
    leader_only = False

    def __init__(self, *, batch: int = 1000) -> None:
        self.batch = batch

    def interval(self, settings: Settings) -> float:
        return min(settings.rescue_interval, max(settings.lease / 2, 0.1))

    async def run_once(self, ctx: MaintenanceContext) -> int:
        return len(await self.rescue(ctx))

    async def rescue(self, ctx: MaintenanceContext) -> list[int]:
        """One pass; the ids of the jobs it changed."""
        expired = await ctx.store.expired(self.batch)
        if not expired:
            return []
        changes = [decide(job, ctx.registry) for job in expired]
        changes = [
            replace(c, callback=callback_due(ctx.registry, j.type, c.status))
            for c, j in zip(changes, expired, strict=True)
        ]
        applied = await ctx.store.apply(changes)
        done = set(applied)
        for change, job in zip(changes, expired, strict=True):
            if change.job_id in done:
                logger.warning("job %d: %s", change.job_id, change.message)
                _count(job, change)
        await run_flagged(
            ctx.store, ctx.registry, [c.job_id for c in changes if c.callback and c.job_id in done]
        )
        return applied


def _count(job: ExpiredJob, change: Change) -> None:
    """Count a rescue that was applied, and the job's end or retry it decided."""
    COUNTS.add_lease_expired(job.type, job.queue)
    if change.status.is_final:
        COUNTS.add_finished(job.type, job.queue, change.status.value)
    elif change.status is JobStatus.QUEUED and change.error is not None:
        COUNTS.add_retry(job.type, job.queue)


def decide(job: ExpiredJob, registry: Registry) -> Change:
    """What happens to one job whose lease expired."""
    definition = registry.get(job.type) if job.type in registry else None
    policy = definition.retry if definition else _DEFAULT_POLICY
    max_crashes = definition.max_crashes if definition else DEFAULT_MAX_CRASHES
    worker = job.worker_id or "?"
    base: dict[str, Any] = {
        "job_id": job.id,
        "expect": _RUNNING,
        "lease_token": job.lease_token,
        "actor": "rescuer",
    }
    if job.tracked:
        return _lost(job, base)
    if not job.started:
        status = JobStatus.CANCELLED if job.cancel_requested else JobStatus.QUEUED
        return Change(
            status=status,
            max_attempts=job.max_attempts + 1,
            mark_start=True,
            run_in=0.0,
            message=f"worker {worker} stopped before its handler was known to start;"
            " attempt given back",
            **base,
        )
    crashes = job.crashes + 1
    quarantined = crashes >= max_crashes
    kind = "WorkerCrashed" if quarantined else "LeaseExpired"
    text = (
        f"its worker died while running it {crashes} times; quarantined"
        if quarantined
        else f"the worker holding the job ({worker}) stopped renewing its lease"
    )
    error = {
        "attempt": job.attempts,
        "type": kind,
        "message": text,
        "traceback": None,
        "at": datetime.now(UTC).isoformat(),
    }
    if job.cancel_requested:
        return Change(
            status=JobStatus.CANCELLED,
            error=error,
            crashes_delta=1,
            message=f"lease expired (worker {worker}); cancelled by request",
            **base,
        )
    if quarantined or job.attempts >= job.max_attempts:
        reason = text if quarantined else f"lease expired; out of attempts ({job.max_attempts})"
        return Change(status=JobStatus.FAILED, error=error, crashes_delta=1, message=reason, **base)
    delay = policy.delay(job.attempts)
    return Change(
        status=JobStatus.QUEUED,
        error=error,
        crashes_delta=1,
        run_in=delay,
        message=f"lease expired (worker {worker} lost); retrying in {delay:.2f}s, alone",
        **base,
    )


def _lost(job: ExpiredJob, base: dict[str, Any]) -> Change:
    """A tracking job whose reporter fell silent past its ttl."""
    text = "no report came within the tracking job's ttl"
    error = {
        "attempt": job.attempts,
        "type": "Lost",
        "message": text,
        "traceback": None,
        "at": datetime.now(UTC).isoformat(),
    }
    if job.cancel_requested:
        return Change(status=JobStatus.CANCELLED, error=error, message=f"lost: {text}", **base)
    return Change(status=JobStatus.FAILED, error=error, message=f"lost: {text}", **base)
