"""Actions on many jobs at once, chosen by a filter: retry or cancel every match.

A bulk action needs a time bound (`created_after` or `created_before`) and acts on at
most `limit` jobs, newest first, so that a slip of the filter never sweeps the whole
table; `dry_run` reports what would be done and does nothing. The decisions are those
of the single actions (`brains_jobs.admin`), applied in batches fenced by status: a job
that moved on in between is left as it is and reported as skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from .admin import job_keeps_key
from .exceptions import InvalidJobOption
from .models import JobStatus
from .store.records import Change

if TYPE_CHECKING:
    from .admin import JobAdmin
    from .models import Job
    from .store.records import JobFilter

MAX_BULK = 100_000
_BATCH = 500
RETRYABLE = (JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.SKIPPED)
CANCELLABLE = (JobStatus.WAITING, JobStatus.QUEUED, JobStatus.RUNNING)


class BulkResult(BaseModel):
    """What a bulk action found and did: the `matched` jobs (eligible ones, up to the
    limit), those it `changed`, and the `skipped` ones (they moved on meanwhile, or, for
    a retry, another job holds their unique key or they are tracking jobs, which no
    worker can run again). A dry run changes nothing.
    """

    action: str
    dry_run: bool
    matched: list[int] = Field(default_factory=list)
    changed: list[int] = Field(default_factory=list)
    skipped: list[int] = Field(default_factory=list)


def check_bound(filters: JobFilter, limit: object) -> int:
    """The checked limit; `InvalidJobOption` without a time bound."""
    if filters.created_after is None and filters.created_before is None:
        raise InvalidJobOption(
            "created_after",
            "a bulk action needs a time bound: give created_after, created_before or both",
        )
    if not isinstance(limit, int) or isinstance(limit, bool) or not 0 < limit <= MAX_BULK:
        raise InvalidJobOption("limit", f"must be from 1 to {MAX_BULK}, got {limit!r}")
    return limit


async def matching(
    admin: JobAdmin, filters: JobFilter, statuses: Sequence[JobStatus], limit: int
) -> list[Job]:
    """Up to `limit` jobs matching `filters` in `statuses`, newest first."""
    found: list[Job] = []
    cursor: str | None = None
    while len(found) < limit:
        page = await admin.store.list_jobs(filters, limit=_BATCH, cursor=cursor)
        found.extend(j for j in page.jobs if j.status in statuses)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    return found[:limit]


async def retry_many(
    admin: JobAdmin, filters: JobFilter, *, limit: int, dry_run: bool, actor: str | None
) -> BulkResult:
    """Retry the failed, cancelled or skipped jobs matching `filters` (see `retry`)."""
    limit = check_bound(filters, limit)
    statuses = RETRYABLE if filters.status is None else (filters.status,)
    if any(s not in RETRYABLE for s in statuses):
        raise InvalidJobOption("status", "only failed, cancelled or skipped jobs are retried")
    jobs = await matching(admin, filters, statuses, limit)
    result = BulkResult(action="retry", dry_run=dry_run, matched=[j.id for j in jobs])
    keys = [j.unique_key for j in jobs if j.unique_key is not None and not job_keeps_key(j)]
    holders = await admin.store.holders(keys) if keys else {}
    changes = []
    for job in jobs:
        holder = holders.get(job.unique_key) if job.unique_key is not None else None
        stranded = job.status is JobStatus.SKIPPED and job.input_from is not None
        if (
            job.tracked
            or stranded
            or (holder is not None and holder != job.id and not job_keeps_key(job))
        ):
            result.skipped.append(job.id)
            continue
        known = job.type in admin.registry
        extra = admin.registry.get(job.type).max_attempts if known else job.max_attempts
        changes.append(
            Change(
                job.id,
                frozenset({job.status}),
                JobStatus.QUEUED,
                max_attempts=job.attempts + extra,
                run_in=0.0,
                message=f"retried by request (bulk): {extra} more attempt(s)",
                actor=actor,
            )
        )
    return await _apply(admin, changes, result)


async def cancel_many(
    admin: JobAdmin, filters: JobFilter, *, limit: int, dry_run: bool, actor: str | None
) -> BulkResult:
    """Cancel the waiting and queued jobs matching `filters`, and ask the workers of
    the running ones to stop them (see `cancel`).
    """
    limit = check_bound(filters, limit)
    statuses = CANCELLABLE if filters.status is None else (filters.status,)
    if any(s not in CANCELLABLE for s in statuses):
        raise InvalidJobOption("status", "only waiting, queued or running jobs are cancelled")
    jobs = await matching(admin, filters, statuses, limit)
    result = BulkResult(action="cancel", dry_run=dry_run, matched=[j.id for j in jobs])
    changes = [
        Change(
            job.id,
            frozenset({JobStatus.RUNNING}),
            JobStatus.RUNNING,
            request_cancel=True,
            message="cancel requested (bulk)",
            actor=actor,
        )
        if job.status is JobStatus.RUNNING and not job.tracked
        else Change(
            job.id,
            frozenset({job.status}),
            JobStatus.CANCELLED,
            message="cancelled by request (bulk)",
            actor=actor,
        )
        for job in jobs
    ]
    return await _apply(admin, changes, result)


async def _apply(admin: JobAdmin, changes: list[Change], result: BulkResult) -> BulkResult:
    if result.dry_run:
        return result
    for start in range(0, len(changes), _BATCH):
        batch = changes[start : start + _BATCH]
        applied = set(await admin.store.apply(batch))
        result.changed.extend(c.job_id for c in batch if c.job_id in applied)
        result.skipped.extend(c.job_id for c in batch if c.job_id not in applied)
    return result
