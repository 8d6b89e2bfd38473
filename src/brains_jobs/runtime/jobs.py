"""Enqueueing, reading and following jobs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar, overload

from pydantic import BaseModel

from ..admin import job_filter, page_limit
from ..definitions import JobDefinition
from ..enqueueing import JobRequest
from ..events import Subscription
from ..exceptions import InvalidJobOption
from ..handle import JobHandle
from ..models import EventKind, Job, JobPage, JobStatus
from ..store.records import Enqueued
from .base import RuntimeBase

if TYPE_CHECKING:
    from collections.abc import Collection
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncConnection

    from ..handle import OutputParser

Out = TypeVar("Out", bound=BaseModel)


class JobsMixin(RuntimeBase):
    """`enqueue`, `enqueue_many`, `get`, `list`, `events`, `handle`."""

    # -- enqueue ----------------------------------------------------------------------

    @overload
    async def enqueue(
        self, job: JobDefinition[Any, Out], inp: Any, **options: Any
    ) -> JobHandle[Out]: ...

    @overload
    async def enqueue(self, job: str, inp: Any, **options: Any) -> JobHandle[Any]: ...

    async def enqueue(
        self,
        job: JobDefinition[Any, Any] | str,
        inp: Any,
        *,
        connection: AsyncConnection | None = None,
        **options: Any,
    ) -> JobHandle[Any]:
        """Validate `inp` and enqueue one job; returns its handle.

        Options: `queue`, `priority`, `run_at` (aware datetime) or `delay` (seconds or
        timedelta), `unique_key` with `on_conflict` (what a repeat does while a job
        holds the key: `return_existing`, the default, returns that job with
        `created=False`; `reject` raises `DuplicateJob`; `replace` gives a waiting or
        queued holder this input and run time) and `unique_until` (`finished`, the
        default: the key is free once its job finished; `pruned`), `tags`, `metadata`,
        `owner`, `max_attempts`. With `connection`, the job is inserted in that open
        transaction and exists only if it commits.
        """
        definition, new = self.enqueuer.prepare(job, inp, options)
        (row,) = await self._publish([new], connection)
        return JobHandle(self.source, row.id, definition, row.created, row.replaced)

    @overload
    async def enqueue_many(
        self, job: JobDefinition[Any, Out], inputs: Iterable[Any], **options: Any
    ) -> list[JobHandle[Out]]: ...

    @overload
    async def enqueue_many(
        self, job: str, inputs: Iterable[Any], **options: Any
    ) -> list[JobHandle[Any]]: ...

    @overload
    async def enqueue_many(self, job: Iterable[JobRequest]) -> list[JobHandle[Any]]: ...

    async def enqueue_many(
        self,
        job: JobDefinition[Any, Any] | str | Iterable[JobRequest],
        inputs: Iterable[Any] | None = None,
        *,
        connection: AsyncConnection | None = None,
        **options: Any,
    ) -> list[JobHandle[Any]]:
        """Enqueue many jobs in one transaction: every input of one type with the same
        options, or a list of `JobRequest`s. Every input is validated before any insert.
        """
        if isinstance(job, JobDefinition | str):
            if inputs is None:
                raise InvalidJobOption("inputs", "enqueue_many(job, inputs): inputs are missing")
            definition, news = self.enqueuer.prepare_many(job, inputs, options)
            return self._handles(definition, await self._publish(news, connection))
        requests = list(job)
        prepared = [self.enqueuer.prepare(r.job, r.input, r.options) for r in requests]
        rows = await self._publish([new for _, new in prepared], connection)
        return [
            self._handle(definition, row)
            for (definition, _), row in zip(prepared, rows, strict=True)
        ]

    # -- inspect and administer -------------------------------------------------------

    def _handle(self, definition: JobDefinition[Any, Any], row: Enqueued) -> JobHandle[Any]:
        return self._handles(definition, [row])[0]

    def _handles(
        self, definition: JobDefinition[Any, Any], rows: Iterable[Enqueued]
    ) -> list[JobHandle[Any]]:
        source = self.source
        # positional: keywords cost a bulk enqueue an eighth of a microsecond per job
        return [JobHandle(source, row.id, definition, row.created, row.replaced) for row in rows]

    def handle(self, job_id: int) -> JobHandle[Any]:
        """A handle for an existing job (untyped: the output is parsed by its type name)."""
        return JobHandle(self.source, job_id, None)

    def output_parser(self, job_type: str) -> OutputParser[Any] | None:
        """The registered definition of `job_type`, if this runtime knows it."""
        return self.registry.get(job_type) if job_type in self.registry else None

    async def get(self, job_id: int) -> Job:
        """The job record, or `JobNotFound`."""
        return await self.admin.get(job_id)

    async def list(
        self,
        *,
        status: JobStatus | str | None = None,
        type: str | None = None,
        queue: str | None = None,
        tag: str | None = None,
        owner: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> JobPage:
        """Jobs matching every filter given, newest first; page on with `next_cursor`."""
        filters = job_filter(
            status=status,
            type=type,
            queue=queue,
            tag=tag,
            owner=owner,
            created_after=created_after,
            created_before=created_before,
        )
        return await self.store.list_jobs(filters, limit=page_limit(limit), cursor=cursor)

    def events(
        self,
        *,
        job_id: int | None = None,
        types: Collection[str] | None = None,
        kinds: Collection[EventKind | str] | None = None,
        after: int | None = None,
        buffer: int = 1000,
    ) -> Subscription:
        """Events as they happen: `async for event in rt.events(): ...`.

        Filter by `job_id`, job `types` and event `kinds`; `after` is the last `seq`
        already seen (None: from now on; 0: from the beginning). A subscriber that
        cannot keep up with `buffer` events gets a `dropped` event saying how many it
        missed; the worker never waits for it.
        """
        try:
            kind_set = None if kinds is None else {EventKind(k) for k in kinds}
        except ValueError as exc:
            raise InvalidJobOption("kinds", str(exc)) from None
        return self.bus.subscribe(
            job_id=job_id, types=types, kinds=kind_set, after=after, buffer=buffer
        )
