"""Actions on jobs: cancel, retry, resubmit, force complete or fail, move, their bulk
versions, prune; and every attempt of a job.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from .. import bulk
from ..admin import job_filter
from ..attempts import attempts_of
from ..bulk import BulkResult
from ..handle import JobHandle
from ..models import Attempt, Job, JobEvent, JobStatus
from .base import RuntimeBase

_FINAL = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.SKIPPED)


class ActionsMixin(RuntimeBase):
    """`cancel`, `retry`, `resubmit`, `force_complete`, `force_fail`, `move`,
    `retry_many`, `cancel_many`, `prune`, `attempts` (the decisions are
    `brains_jobs.admin`'s and `brains_jobs.bulk`'s).
    """

    async def cancel(self, job_id: int, *, actor: str | None = None) -> JobStatus:
        """Cancel a job: a queued one never runs; a running one's handler is cancelled.

        Returns CANCELLED, or RUNNING when a running job was asked to stop (its worker
        cancels it within a second and it then becomes CANCELLED).
        `InvalidJobState` for a job that already finished.
        """
        status = await self.admin.cancel(job_id, actor=actor)
        if status is JobStatus.RUNNING:
            for worker in self._workers:
                worker.cancel_running(job_id)
        return status

    async def retry(self, job_id: int, *, actor: str | None = None) -> JobHandle[Any]:
        """Run a failed, cancelled or skipped job again, with a fresh allowance of
        attempts; the earlier attempts and their errors stay on the record.
        """
        await self.admin.retry(job_id, actor=actor)
        job = await self.admin.get(job_id)
        return JobHandle(self.source, job_id, self.source.output_parser(job.type))

    async def resubmit(self, job_id: int, *, actor: str | None = None) -> JobHandle[Any]:
        """Enqueue a new job with the input and options of job `job_id` (in any status);
        the new job's `original_id` names the original, whose audit trail records who
        resubmitted it and as which job.
        """
        new_id = await self.admin.resubmit(job_id, actor=actor)
        job = await self.admin.get(new_id)
        return JobHandle(self.source, new_id, self.source.output_parser(job.type))

    async def force_complete(self, job_id: int, output: Any, *, actor: str | None = None) -> None:
        """Mark a job that has not succeeded as succeeded with `output`, checked against
        its type's output model (`InvalidJobOutput` names each bad field). A running
        job's handler is stopped and its result discarded.
        """
        await self.admin.force_complete(job_id, output, actor=actor)
        self._stop_locally(job_id)

    async def force_fail(self, job_id: int, reason: str, *, actor: str | None = None) -> None:
        """Fail a waiting, queued or running job for good, with `reason`. A running
        job's handler is stopped and its result discarded.
        """
        await self.admin.force_fail(job_id, reason, actor=actor)
        self._stop_locally(job_id)

    async def move(
        self,
        job_id: int,
        *,
        queue: str | None = None,
        priority: int | None = None,
        actor: str | None = None,
    ) -> None:
        """Reassign a job to another queue, or give it another priority (a running job:
        for its next attempts).
        """
        await self.admin.move(job_id, queue=queue, priority=priority, actor=actor)

    async def retry_many(
        self,
        *,
        status: JobStatus | str | None = None,
        type: str | None = None,
        queue: str | None = None,
        tag: str | None = None,
        owner: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = 1000,
        dry_run: bool = False,
        actor: str | None = None,
    ) -> BulkResult:
        """Retry the failed, cancelled or skipped jobs (of `status`, if given) that match
        the filter, newest first: at most `limit`, and only with a time bound
        (`created_after`, `created_before`). `dry_run` only reports the matches.
        """
        filters = job_filter(
            status=status,
            type=type,
            queue=queue,
            tag=tag,
            owner=owner,
            created_after=created_after,
            created_before=created_before,
        )
        return await bulk.retry_many(self.admin, filters, limit=limit, dry_run=dry_run, actor=actor)

    async def cancel_many(
        self,
        *,
        status: JobStatus | str | None = None,
        type: str | None = None,
        queue: str | None = None,
        tag: str | None = None,
        owner: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = 1000,
        dry_run: bool = False,
        actor: str | None = None,
    ) -> BulkResult:
        """Cancel the waiting, queued or running jobs (of `status`, if given) that match
        the filter, as `cancel` does, with the bounds of `retry_many`.
        """
        filters = job_filter(
            status=status,
            type=type,
            queue=queue,
            tag=tag,
            owner=owner,
            created_after=created_after,
            created_before=created_before,
        )
        result = await bulk.cancel_many(
            self.admin, filters, limit=limit, dry_run=dry_run, actor=actor
        )
        for job_id in result.changed:
            self._stop_locally(job_id)
        return result

    async def attempts(self, job: int | Job) -> builtins.list[Attempt]:
        """Every attempt of a job (its id, or its record when already read), oldest
        first: start, end, worker, how it ended and its error (from its audit trail).
        """
        if not isinstance(job, Job):
            job = await self.admin.get(job)
        events: builtins.list[JobEvent] = []
        after = 0
        while True:
            page = await self.store.events_after(after, job_id=job.id, limit=1000)
            events.extend(page)
            if len(page) < 1000:
                return attempts_of(job, events)
            after = page[-1].seq

    def _stop_locally(self, job_id: int) -> None:
        """Stop a job's handler at once if a worker of this process runs it (workers
        elsewhere notice at their next lease renewal).
        """
        for worker in self._workers:
            worker.cancel_running(job_id)

    async def prune(
        self,
        older_than: float | str | timedelta,
        *,
        statuses: Iterable[JobStatus | str] = _FINAL,
    ) -> builtins.list[int]:
        """Delete finished jobs (of `statuses`) that finished more than `older_than`
        (seconds, a timedelta, or text such as `7d`) ago, with their events and
        artifacts; returns their ids. Queued and running jobs are never pruned.
        """
        return await self.admin.prune(
            older_than, statuses, artifacts=self.artifacts, batch=self.settings.prune_batch
        )
