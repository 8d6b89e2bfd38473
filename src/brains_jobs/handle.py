"""`JobHandle`: a typed reference to an enqueued job.

A handle talks to the jobs through a `JobSource` (the runtime is one), not through the
runtime itself, so that anything able to read jobs and follow their events can hand
handles out.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import anyio

from .exceptions import JobCancelled, JobFailed
from .models import EventKind, Job, JobStatus

if TYPE_CHECKING:
    from .events import Subscription

Out = TypeVar("Out")
Out_co = TypeVar("Out_co", covariant=True)


class OutputParser(Protocol[Out_co]):
    """What a handle needs of a job type: its name and how to read its stored output
    (a `JobDefinition` is one).
    """

    @property
    def name(self) -> str:
        """The job type's name."""
        ...

    def parse_output(self, data: Any) -> Out_co:
        """The stored output as the output model."""
        ...


class JobSource(Protocol):
    """Where handles read jobs and their events (the runtime is one)."""

    async def get(self, job_id: int) -> Job:
        """The job's record, or `JobNotFound`."""
        ...

    async def cancel(self, job_id: int) -> JobStatus:
        """Cancel the job."""
        ...

    def events(
        self,
        *,
        job_id: int | None = None,
        kinds: Collection[EventKind | str] | None = None,
        after: int | None = None,
    ) -> Subscription:
        """The job's events."""
        ...

    def output_parser(self, job_type: str) -> OutputParser[Any] | None:
        """The job type that reads outputs of `job_type`, if this process knows it."""
        ...


class JobHandle(Generic[Out]):
    """A job that was enqueued: follow it, wait for its typed result, or cancel it.

    `created` is False when a job holding the same unique key already existed; the
    handle then refers to that job, and `replaced` says whether it took this enqueue's
    input and run time (`on_conflict="replace"`).
    """

    def __init__(
        self,
        source: JobSource,
        job_id: int,
        definition: OutputParser[Out] | None,
        created: bool = True,
        replaced: bool = False,
    ) -> None:
        self.source = source
        self.id = job_id
        self.definition = definition
        self.created = created
        self.replaced = replaced

    def __repr__(self) -> str:
        name = self.definition.name if self.definition else "?"
        return f"<JobHandle {self.id} {name}>"

    async def get(self) -> Job:
        """The job's current record."""
        return await self.source.get(self.id)

    async def status(self) -> JobStatus:
        """The job's current status."""
        return (await self.get()).status

    def events(self, *, after: int = 0) -> Subscription:
        """The job's events, from its whole history (`after=0`) on, live."""
        return self.source.events(job_id=self.id, after=after)

    async def cancel(self) -> JobStatus:
        """Cancel the job (see `Runtime.cancel`)."""
        return await self.source.cancel(self.id)

    async def wait(self, timeout: float | None = None) -> Job:
        """Wait until the job is final and return its record; `TimeoutError` after `timeout`."""
        with anyio.fail_after(timeout):
            job = await self.get()
            if job.status.is_final:  # no need to follow it (and `timeout=0` means now)
                return job
            async with self.source.events(job_id=self.id, kinds={EventKind.STATUS}) as events:
                job = await self.get()
                if job.status.is_final:
                    return job
                async for event in events:
                    if event.status is not None and event.status.is_final:
                        break
            return await self.get()

    async def result(self, timeout: float | None = None) -> Out:
        """The output, once the job succeeds; `JobFailed`, `JobCancelled` or `TimeoutError`."""
        job = await self.wait(timeout)
        return self.output_of(job)

    def output_of(self, job: Job) -> Out:
        """The typed output of `job` (this handle's job, final), or the error it ended with."""
        if job.status in (JobStatus.CANCELLED, JobStatus.SKIPPED):
            raise JobCancelled(self.id)
        if job.status is JobStatus.FAILED:
            last = job.last_error
            raise JobFailed(self.id, f"{last.type}: {last.message}" if last else None, job.attempts)
        definition = self.definition or self.source.output_parser(job.type)
        if definition is None:
            return job.output  # type: ignore[no-any-return]
        return definition.parse_output(job.output)
