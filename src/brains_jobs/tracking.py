"""Tracking jobs: jobs that no worker runs, whose work an outside process does and
reports (an import run by another system, a batch submitted to a provider's API).

A tracking job starts `running` and goes through the same statuses, events, stats and
retention as any job. Its reporter keeps it alive with `report` (progress, message,
usage) at least every `ttl`, and ends it with `complete` or `fail`, from any process.
Each report renews the job's lease by its `ttl` and changes its lease token, so that a
rescue decided before the report no longer applies; a job whose reporter fell silent
past its `ttl` fails as `Lost` (see `maintenance.rescuer`). A worker's handler hands its
job over the same way (`ctx.hand_over(ttl)`).

A tracking job's type need not be registered: for a type this process does not know,
the input is any JSON object and the output is not checked.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from .admin import JobAdmin, error_record
from .callbacks import callback_due
from .context import MAX_TTL
from .definitions import JobDefinition
from .exceptions import InvalidJobOption, InvalidJobState, PermanentError
from .models import JobStatus
from .payloads import storable
from .store.records import Change

if TYPE_CHECKING:
    from .context import JobContext
    from .enqueueing import Enqueuer
    from .models import Job
    from .store.records import NewJob

_ATTEMPTS = 5
_RUNNING = frozenset({JobStatus.RUNNING})


class AnyObject(BaseModel):
    """The input and output of a tracking job of a type this process does not know."""

    model_config = ConfigDict(extra="allow")


async def _untracked(ctx: JobContext, inp: AnyObject) -> AnyObject:
    raise PermanentError(f"job type {ctx.job_type!r} is tracked: no worker runs it")


def tracking_definition(name: str) -> JobDefinition[AnyObject, AnyObject]:
    """A definition for tracking jobs of a type this process does not know."""
    return JobDefinition(name, _untracked, AnyObject, AnyObject, max_attempts=1)


def ttl_seconds(ttl: float | timedelta) -> float:
    """`ttl` in seconds, checked."""
    seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else ttl
    if (
        not isinstance(seconds, int | float)
        or isinstance(seconds, bool)
        or not math.isfinite(seconds)
        or not 0 < seconds <= MAX_TTL
    ):
        raise InvalidJobOption("ttl", f"must be from 0 to {MAX_TTL:g} seconds, got {ttl!r}")
    return float(seconds)


def usage_text(usage: Mapping[str, float] | None) -> str | None:
    """Reported usage as JSON text of numbers, checked."""
    if not usage:
        return None
    if not isinstance(usage, Mapping):
        raise InvalidJobOption("usage", "expected a mapping of names to numbers")
    for name, amount in usage.items():
        if not isinstance(name, str) or not 0 < len(name) <= 64:
            raise InvalidJobOption("usage", f"names are 1 to 64 characters, got {name!r}")
        if (
            not isinstance(amount, int | float)
            or isinstance(amount, bool)
            or not math.isfinite(amount)
        ):
            raise InvalidJobOption("usage", f"{name!r} must be a finite number, got {amount!r}")
    return json.dumps(dict(usage))


class Tracker:
    """Creates tracking jobs and applies their reports (see the module docstring)."""

    def __init__(self, admin: JobAdmin, enqueuer: Enqueuer) -> None:
        self.admin = admin
        self.enqueuer = enqueuer

    def new_job(
        self,
        job: JobDefinition[Any, Any] | str,
        inp: Any,
        ttl: float | timedelta,
        options: Mapping[str, Any],
    ) -> tuple[JobDefinition[Any, Any], NewJob]:
        """The definition and checked `NewJob` of a tracking job."""
        if options.get("depends_on"):
            raise InvalidJobOption("depends_on", "a tracking job starts running at once")
        if isinstance(job, str) and job not in self.enqueuer.registry:
            job = tracking_definition(job)
        definition, new = self.enqueuer.prepare(job, inp, options)
        new.track_ttl = ttl_seconds(ttl)
        new.max_attempts = 1
        return definition, new

    async def _tracked(self, job_id: int) -> Job:
        job = await self.admin.get(job_id)
        if not job.tracked:
            raise InvalidJobState(
                f"job {job_id} is run by workers, not tracked; use force_complete or"
                " force_fail to settle it by hand"
            )
        if job.status is not JobStatus.RUNNING:
            lost = " (lost: no report came within its ttl)" if _was_lost(job) else ""
            raise InvalidJobState(f"job {job_id} is {job.status.value}{lost}")
        return job

    async def report(
        self,
        job_id: int,
        *,
        progress: float | None = None,
        message: str | None = None,
        usage: Mapping[str, float] | None = None,
        actor: str | None = None,
    ) -> None:
        """Record progress (a fraction from 0 to 1), a message and usage, and renew the
        job's time to report.
        """
        if progress is not None and not (
            isinstance(progress, int | float) and math.isfinite(progress) and 0 <= progress <= 1
        ):
            raise InvalidJobOption("progress", f"must be from 0.0 to 1.0, got {progress!r}")
        text = None if message is None else storable(str(message))
        used = usage_text(usage)
        for _ in range(_ATTEMPTS):
            job = await self._tracked(job_id)
            change = Change(
                job_id,
                _RUNNING,
                JobStatus.RUNNING,
                message=text,
                actor=actor,
                progress=None if progress is None else float(progress),
                lease_for=job.track_ttl,
                new_token=uuid.uuid4().hex,
                usage=used,
            )
            if await self.admin.store.apply([change]):
                return
        raise InvalidJobState(f"job {job_id} keeps changing; try again")

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
        used = usage_text(usage)
        for _ in range(_ATTEMPTS):
            job = await self._tracked(job_id)
            change = Change(
                job_id,
                _RUNNING,
                JobStatus.SUCCEEDED,
                output=self.admin.output_text(job, output),
                message="completed by its reporter",
                actor=actor,
                usage=used,
                callback=callback_due(self.admin.registry, job.type, JobStatus.SUCCEEDED),
            )
            if await self.admin.apply_ending(change):
                return
        raise InvalidJobState(f"job {job_id} keeps changing; try again")

    async def fail(
        self,
        job_id: int,
        error: str | BaseException,
        *,
        usage: Mapping[str, float] | None = None,
        actor: str | None = None,
    ) -> None:
        """End a tracking job as failed with `error` (text, or an exception)."""
        if isinstance(error, BaseException):
            kind, text = type(error).__name__, str(error) or type(error).__name__
        elif isinstance(error, str) and error.strip():
            kind, text = "TrackedFailure", error
        else:
            raise InvalidJobOption("error", "say what went wrong, in a few words")
        text = storable(text)
        used = usage_text(usage)
        for _ in range(_ATTEMPTS):
            job = await self._tracked(job_id)
            change = Change(
                job_id,
                _RUNNING,
                JobStatus.FAILED,
                error=error_record(job.attempts, kind, text),
                message=f"failed by its reporter: {text[:200]}",
                actor=actor,
                usage=used,
                callback=callback_due(self.admin.registry, job.type, JobStatus.FAILED),
            )
            if await self.admin.apply_ending(change):
                return
        raise InvalidJobState(f"job {job_id} keeps changing; try again")


def _was_lost(job: Job) -> bool:
    error = job.last_error
    return job.status is JobStatus.FAILED and error is not None and error.type == "Lost"
