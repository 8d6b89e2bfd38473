"""Tracking jobs: work done outside any worker, reported from any process (see
`brains_jobs.tracking`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, TypeVar, overload

from pydantic import BaseModel

from ..definitions import JobDefinition
from ..handle import JobHandle
from ..tracking import Tracker
from .base import RuntimeBase

Out = TypeVar("Out", bound=BaseModel)


class TrackingMixin(RuntimeBase):
    """`track`, `report`, `complete`, `fail`."""

    @property
    def tracker(self) -> Tracker:
        """Creates tracking jobs and applies their reports."""
        return Tracker(self.admin, self.enqueuer)

    @overload
    async def track(
        self,
        job: JobDefinition[Any, Out],
        inp: Any,
        *,
        ttl: float | timedelta,
        **options: Any,
    ) -> JobHandle[Out]: ...

    @overload
    async def track(
        self, job: str, inp: Any, *, ttl: float | timedelta, **options: Any
    ) -> JobHandle[Any]: ...

    async def track(
        self,
        job: JobDefinition[Any, Any] | str,
        inp: Any,
        *,
        ttl: float | timedelta,
        **options: Any,
    ) -> JobHandle[Any]:
        """Create a tracking job: `running` at once, worked on by an outside process that
        reports (`report`) at least every `ttl` (seconds or a timedelta) and ends it
        (`complete`, `fail`); one whose reporter falls silent fails as lost. `job` is a
        definition, a registered type, or the name of a type this process does not
        know (then the input is any JSON object). Options as for `enqueue` (`owner`,
        `tags`, `metadata`, `unique_key`...).
        """
        definition, new = self.tracker.new_job(job, inp, ttl, options)
        (row,) = await self._publish([new])
        return JobHandle(self.source, row.id, definition, created=row.created)

    async def report(
        self,
        job_id: int,
        *,
        progress: float | None = None,
        message: str | None = None,
        usage: Mapping[str, float] | None = None,
        actor: str | None = None,
    ) -> None:
        """Report on a tracking job: progress (0.0 to 1.0), a message, usage to add;
        each report gives it its `ttl` again. `InvalidJobState` once it ended (a lost
        job says so).
        """
        await self.tracker.report(
            job_id, progress=progress, message=message, usage=usage, actor=actor
        )

    async def complete(
        self,
        job_id: int,
        output: Any,
        *,
        usage: Mapping[str, float] | None = None,
        actor: str | None = None,
    ) -> None:
        """End a tracking job as succeeded with `output` (checked against its type's
        output model when this process knows the type).
        """
        await self.tracker.complete(job_id, output, usage=usage, actor=actor)

    async def fail(
        self,
        job_id: int,
        error: str | BaseException,
        *,
        usage: Mapping[str, float] | None = None,
        actor: str | None = None,
    ) -> None:
        """End a tracking job as failed with `error` (text, or an exception)."""
        await self.tracker.fail(job_id, error, usage=usage, actor=actor)
