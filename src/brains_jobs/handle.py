"""`JobHandle`: a typed reference to an enqueued job."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio

from .exceptions import JobCancelled, JobFailed
from .models import EventKind, Job, JobStatus

if TYPE_CHECKING:
    from .definitions import JobDefinition
    from .events import Subscription
    from .runtime import Runtime

Out = TypeVar("Out")


class JobHandle(Generic[Out]):
    """A job that was enqueued: follow it, wait for its typed result, or cancel it.

    `created` is False when a job with the same unique key already existed; the handle
    then refers to that job.
    """

    def __init__(
        self,
        runtime: Runtime,
        job_id: int,
        definition: JobDefinition[Any, Any] | None,
        *,
        created: bool = True,
    ) -> None:
        self.runtime = runtime
        self.id = job_id
        self.definition = definition
        self.created = created

    def __repr__(self) -> str:
        name = self.definition.name if self.definition else "?"
        return f"<JobHandle {self.id} {name}>"

    async def get(self) -> Job:
        """The job's current record."""
        return await self.runtime.get(self.id)

    async def status(self) -> JobStatus:
        """The job's current status."""
        return (await self.get()).status

    def events(self, *, after: int = 0) -> Subscription:
        """The job's events, from its whole history (`after=0`) on, live."""
        return self.runtime.events(job_id=self.id, after=after)

    async def cancel(self) -> JobStatus:
        """Cancel the job (see `Runtime.cancel`)."""
        return await self.runtime.cancel(self.id)

    async def wait(self, timeout: float | None = None) -> Job:
        """Wait until the job is final and return its record; `TimeoutError` after `timeout`."""
        with anyio.fail_after(timeout):
            async with self.runtime.events(job_id=self.id, kinds={EventKind.STATUS}) as events:
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
        if job.status is JobStatus.CANCELLED:
            raise JobCancelled(self.id)
        if job.status is JobStatus.FAILED:
            last = job.last_error
            raise JobFailed(self.id, f"{last.type}: {last.message}" if last else None, job.attempts)
        definition = self.definition
        if definition is None and job.type in self.runtime.registry:
            definition = self.runtime.registry.get(job.type)
        if definition is None:
            return job.output  # type: ignore[no-any-return]
        return definition.parse_output(job.output)  # type: ignore[no-any-return]
