"""Actions on jobs, decided here once for every store: cancel, retry, resubmit, force
complete or fail, move, prune; and the checks of what callers ask for when they list
jobs.

Each action reads the job, decides what it becomes, and has the store apply that change
only if the job is still as it was read (its status); if it moved on in between, the
action reads again. Every action is an audit event naming its `actor`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from .callbacks import callback_due, run_flagged
from .definitions import validation_errors
from .durations import parse_seconds
from .enqueueing import check_priority, check_queue, checked_json
from .exceptions import (
    ConfigurationError,
    InvalidJobOption,
    InvalidJobOutput,
    InvalidJobState,
    JobNotFound,
    StoreError,
)
from .models import Job, JobStatus
from .payloads import dump_model, unstorable
from .publishing import publish
from .store.records import Change, JobFilter

if TYPE_CHECKING:
    from .artifacts import ArtifactStore
    from .enqueueing import Enqueuer
    from .registry import Registry
    from .store.roles import Store

MAX_PAGE = 10_000

_ATTEMPTS = 5  # reads before giving up on a job that keeps changing


class JobAdmin:
    """Acts on jobs by request (see the module docstring)."""

    def __init__(self, store: Store, registry: Registry, enqueuer: Enqueuer) -> None:
        self.store = store
        self.registry = registry
        self.enqueuer = enqueuer

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
            elif job.status is JobStatus.RUNNING and job.tracked:
                # No worker to ask: its reporter learns at its next report.
                change = Change(
                    job_id,
                    frozenset({JobStatus.RUNNING}),
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
            if job.status is JobStatus.SKIPPED and job.input_from is not None:
                raise InvalidJobState(
                    f"job {job_id} is a workflow step that takes its input from the jobs it"
                    " waited for, and was skipped before it got one; run the workflow"
                    " again from the step that failed (resubmit it, or enqueue a new chain)"
                )
            if job.tracked:
                raise InvalidJobState(
                    f"job {job_id} is a tracking job: no worker can run it again; track the"
                    " work anew (or resubmit it, for a type workers run)"
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
            try:
                applied = await self.store.apply([change])
            except StoreError as exc:
                if not _key_taken(exc):
                    raise
                raise InvalidJobState(
                    f"job {job_id} cannot run again: another job took its unique key"
                    f" {job.unique_key!r} meanwhile"
                ) from None
            if applied:
                return limit
        raise InvalidJobState(f"job {job_id} keeps changing; try again")

    async def resubmit(self, job_id: int, *, actor: str | None = None) -> int:
        """A new job with the input and options of job `job_id` (in any status), linked
        to it by `original_id`; returns the new job's id. The original gets an `action`
        event naming the new job and `actor`.
        """
        job = await self.get(job_id)
        (new,) = await publish(self.store, [self.enqueuer.resubmission(job)])
        message = f"resubmitted as job {new.id}"
        change = Change(job_id, frozenset({job.status}), job.status, message=message, actor=actor)
        if not await self.store.apply([change]):  # it moved on: record it all the same
            latest = await self.get(job_id)
            await self.store.apply(
                [replace(change, expect=frozenset({latest.status}), status=latest.status)]
            )
        return new.id

    async def force_complete(self, job_id: int, output: Any, *, actor: str | None = None) -> None:
        """Mark a job that has not succeeded as succeeded with `output` (checked against
        its type's output model); a running one's worker stops its handler and its
        result is discarded. Its dependents are resolved as for any success.
        """
        for _ in range(_ATTEMPTS):
            job = await self.get(job_id)
            if job.status is JobStatus.SUCCEEDED:
                raise InvalidJobState(f"job {job_id} has succeeded already")
            text = self.output_text(job, output)
            change = Change(
                job_id,
                frozenset({job.status}),
                JobStatus.SUCCEEDED,
                output=text,
                message="completed by request",
                actor=actor,
                callback=callback_due(self.registry, job.type, JobStatus.SUCCEEDED),
            )
            if await self.apply_ending(change):
                return
        raise InvalidJobState(f"job {job_id} keeps changing; try again")

    async def force_fail(self, job_id: int, reason: str, *, actor: str | None = None) -> None:
        """Fail a waiting, queued or running job for good with `reason` (error type
        `FailedByRequest`); a running one's worker stops its handler and its result is
        discarded.
        """
        reason = _reason(reason)
        for _ in range(_ATTEMPTS):
            job = await self.get(job_id)
            if job.status.is_final:
                raise InvalidJobState(f"job {job_id} is {job.status.value} and cannot be failed")
            change = Change(
                job_id,
                frozenset({job.status}),
                JobStatus.FAILED,
                error=error_record(job.attempts, "FailedByRequest", reason),
                message=f"failed by request: {reason}",
                actor=actor,
                callback=callback_due(self.registry, job.type, JobStatus.FAILED),
            )
            if await self.apply_ending(change):
                return
        raise InvalidJobState(f"job {job_id} keeps changing; try again")

    async def move(
        self,
        job_id: int,
        *,
        queue: str | None = None,
        priority: int | None = None,
        actor: str | None = None,
    ) -> None:
        """Give a job another queue or priority (a running one: for its next attempts)."""
        if queue is None and priority is None:
            raise InvalidJobOption("queue", "give a queue, a priority or both")
        queue = None if queue is None else check_queue(queue)
        priority = None if priority is None else check_priority(priority)
        moved = ", ".join(
            part
            for part in (
                None if queue is None else f"queue {queue}",
                None if priority is None else f"priority {priority}",
            )
            if part
        )
        for _ in range(_ATTEMPTS):
            job = await self.get(job_id)
            change = Change(
                job_id,
                frozenset({job.status}),
                job.status,
                queue=queue,
                priority=priority,
                message=f"moved to {moved}",
                actor=actor,
            )
            if await self.store.apply([change]):
                return
        raise InvalidJobState(f"job {job_id} keeps changing; try again")

    async def apply_ending(self, change: Change) -> bool:
        """Apply a change that may end a job, then run the callback it flagged."""
        applied = await self.store.apply([change])
        if applied and change.callback:
            await run_flagged(self.store, self.registry, applied)
        return bool(applied)

    def output_text(self, job: Job, output: Any) -> str | None:
        """`output` checked against the output model of `job`'s type, as JSON text
        (any JSON value for a type this process does not know).
        """
        if job.type in self.registry:
            definition = self.registry.get(job.type)
            try:
                model = definition.output_model.model_validate(
                    output.model_dump(mode="json") if isinstance(output, BaseModel) else output
                )
            except ValidationError as exc:
                raise InvalidJobOutput(job.type, validation_errors(exc)) from None
            return dump_model(model)
        return checked_json("output", output)

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


def error_record(attempt: int, kind: str, message: str) -> dict[str, Any]:
    """The stored record of an error that no handler raised."""
    return {
        "attempt": attempt,
        "type": kind,
        "message": message,
        "traceback": None,
        "at": datetime.now(UTC).isoformat(),
    }


def _reason(reason: object) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidJobOption("reason", "say why, in a few words")
    problem = unstorable(reason)
    if problem:
        raise InvalidJobOption("reason", problem)
    return reason[:2000]


def _key_taken(exc: StoreError) -> bool:
    """True when the database refused a change because a unique key is held."""
    text = str(exc).lower()
    return "unique" in text and ("constraint" in text or "duplicate key" in text)


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
