"""Actions on jobs, decided here once for every store: cancel, retry, prune; and the
checks of what callers ask for when they list jobs.

Each action reads the job, decides what it becomes, and has the store apply that change
only if the job is still as it was read (its status); if it moved on in between, the
action reads again. Every action is an audit event naming its `actor`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from .durations import parse_seconds
from .exceptions import ConfigurationError, InvalidJobOption, InvalidJobState, JobNotFound
from .models import Job, JobStatus
from .store.records import Change, JobFilter

if TYPE_CHECKING:
    from .artifacts import ArtifactStore
    from .registry import Registry
    from .store.roles import Store

MAX_PAGE = 10_000

_ATTEMPTS = 5  # reads before giving up on a job that keeps changing


class JobAdmin:
    """Cancels and retries jobs (see the module docstring)."""

    def __init__(self, store: Store, registry: Registry) -> None:
        self.store = store
        self.registry = registry

    async def get(self, job_id: int) -> Job:
        """The job, or `JobNotFound`."""
        job = await self.store.get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    async def cancel(self, job_id: int, *, actor: str | None = None) -> JobStatus:
        """Cancel a waiting or queued job; ask the worker of a running one to stop it.

        Returns CANCELLED, or RUNNING when a running job was asked to stop.
        `InvalidJobState` for a job that already finished.
        """
        for _ in range(_ATTEMPTS):
            job = await self.get(job_id)
            if job.status in (JobStatus.QUEUED, JobStatus.WAITING):
                change = Change(
                    job_id,
                    frozenset({job.status}),
                    JobStatus.CANCELLED,
                    message="cancelled by request",
                    actor=actor,
                )
            elif job.status is JobStatus.RUNNING:
                change = Change(
                    job_id,
                    frozenset({JobStatus.RUNNING}),
                    JobStatus.RUNNING,
                    request_cancel=True,
                    message="cancel requested",
                    actor=actor,
                )
            else:
                raise InvalidJobState(f"job {job_id} is {job.status.value} and cannot be cancelled")
            if await self.store.apply([change]):
                return change.status
        raise InvalidJobState(f"job {job_id} keeps changing; try again")

    async def retry(self, job_id: int, *, actor: str | None = None) -> int:
        """Queue a failed, cancelled or skipped job again with a fresh allowance of
        attempts (its type's `max_attempts`); its earlier attempts and errors stay on
        the record. Returns the new attempt limit.
        """
        for _ in range(_ATTEMPTS):
            job = await self.get(job_id)
            if job.status not in (JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.SKIPPED):
                raise InvalidJobState(
                    f"job {job_id} is {job.status.value}; only failed, cancelled or skipped"
                    " jobs can be retried"
                )
            if job.unique_key is not None and not job_keeps_key(job):
                holder = (await self.store.holders([job.unique_key])).get(job.unique_key)
                if holder is not None and holder != job_id:
                    raise InvalidJobState(
                        f"job {job_id} cannot run again: job {holder} holds its unique key"
                        f" {job.unique_key!r} now"
                    )
            known = job.type in self.registry
            extra = self.registry.get(job.type).max_attempts if known else job.max_attempts
            limit = job.attempts + extra
            change = Change(
                job_id,
                frozenset({job.status}),
                JobStatus.QUEUED,
                max_attempts=limit,
                run_in=0.0,
                message=f"retried by request: {extra} more attempt(s)",
                actor=actor,
            )
            if await self.store.apply([change]):
                return limit
        raise InvalidJobState(f"job {job_id} keeps changing; try again")

    async def prune(
        self,
        older_than: float | str | timedelta,
        statuses: Iterable[JobStatus | str],
        *,
        artifacts: ArtifactStore,
        batch: int,
    ) -> list[int]:
        """Delete finished jobs of `statuses` that finished more than `older_than` ago,
        with their events and artifacts, batch by batch; returns their ids.
        """
        try:
            age = parse_seconds(older_than, name="older_than")
        except ConfigurationError as exc:
            raise InvalidJobOption("older_than", str(exc)) from None
        periods = {_status(s, "statuses"): age for s in statuses}
        ids: list[int] = []
        while True:
            found = await self.store.prune(periods, batch)
            for job_id in found:
                await artifacts.delete_job(job_id)
            ids.extend(found)
            if len(found) < batch:
                return sorted(ids)


def job_keeps_key(job: Job) -> bool:
    """True when `job` holds its unique key until pruned (then no other job took it)."""
    return job.unique_until == "pruned"


def _status(value: JobStatus | str, option: str) -> JobStatus:
    try:
        return JobStatus(value)
    except ValueError:
        known = ", ".join(s.value for s in JobStatus)
        raise InvalidJobOption(option, f"{value!r} is not one of {known}") from None


def job_filter(
    *,
    status: JobStatus | str | None = None,
    type: str | None = None,
    queue: str | None = None,
    tag: str | None = None,
    owner: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
) -> JobFilter:
    """A checked `JobFilter`; a bad status or time is an `InvalidJobOption`."""
    for name, when in (("created_after", created_after), ("created_before", created_before)):
        if when is not None and (not isinstance(when, datetime) or when.tzinfo is None):
            raise InvalidJobOption(name, f"expected a timezone-aware datetime, got {when!r}")
    return JobFilter(
        status=None if status is None else _status(status, "status"),
        type=type,
        queue=queue,
        tag=tag,
        owner=owner,
        created_after=created_after,
        created_before=created_before,
    )


def page_limit(limit: object) -> int:
    """A checked page size."""
    if not isinstance(limit, int) or isinstance(limit, bool) or not 0 < limit <= MAX_PAGE:
        raise InvalidJobOption(
            "limit", f"must be a whole number from 1 to {MAX_PAGE}, got {limit!r}"
        )
    return limit
