"""Actions on jobs: cancel, retry, prune."""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from ..handle import JobHandle
from ..models import JobStatus
from .base import RuntimeBase

_FINAL = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.SKIPPED)


class ActionsMixin(RuntimeBase):
    """`cancel`, `retry`, `prune` (the decisions are `brains_jobs.admin`'s)."""

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
