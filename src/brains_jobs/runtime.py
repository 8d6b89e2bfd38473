"""`Runtime`: the host application's one object. It wires the registry, plugins, store,
event bus and artifact store, and runs workers.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import os
import signal
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar, overload

import anyio
from pydantic import BaseModel

from .definitions import JobDefinition
from .events import EventBus, Subscription
from .exceptions import ConfigurationError, JobNotFound, PayloadTooLarge
from .handle import JobHandle
from .models import EventKind, Job, JobPage, JobStatus, Stats
from .plugins.host import PluginHost
from .registry import Registry
from .store.base import JobFilter, NewJob
from .worker import Worker

if TYPE_CHECKING:
    from collections.abc import Collection
    from types import TracebackType

    from sqlalchemy.ext.asyncio import AsyncConnection

    from .artifacts import ArtifactStore
    from .store.base import Store

Out = TypeVar("Out", bound=BaseModel)

logger = logging.getLogger("brains_jobs.runtime")

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///brains_jobs.db"
DEFAULT_ARTIFACTS = "brains_jobs_artifacts"
DEFAULT_MAX_PAYLOAD = 1024 * 1024


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return float(value)
    except ValueError:
        raise ConfigurationError(f"{name}={value!r} is not a number") from None


@dataclass(frozen=True, slots=True)
class JobRequest:
    """One job for `Runtime.enqueue_many`: the type (definition or name), input, options."""

    job: JobDefinition[Any, Any] | str
    input: Any
    options: dict[str, Any] = field(default_factory=dict)


class Runtime:
    """Registry, plugins, store, events and workers behind one `async with`.

    ``async with Runtime("sqlite+aiosqlite:///jobs.db") as rt:`` opens the store
    (creating its tables unless `create_schema=False`), loads plugins (entry points
    unless `load_entrypoints=False`, plus `plugins` given in code: modules, objects or
    `"package.module"` strings) and starts the event bus. Every option not given reads
    its `BRAINS_JOBS_*` environment variable.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        plugins: Iterable[object | str] = (),
        jobs: Iterable[JobDefinition[Any, Any]] = (),
        load_entrypoints: bool = True,
        create_schema: bool = True,
        artifacts: str | None = None,
        lease: float | None = None,
        max_payload: int | None = None,
    ) -> None:
        self.url = url or os.environ.get("BRAINS_JOBS_DATABASE_URL", DEFAULT_DATABASE_URL)
        self.host = PluginHost(plugins, load_entrypoints=load_entrypoints)
        self.registry = Registry()
        self.host.register_jobs(self.registry)
        for definition in jobs:
            self.registry.add(definition)
        self.create_schema = create_schema
        self.lease = lease if lease is not None else _env_float("BRAINS_JOBS_LEASE", 30.0)
        self.max_payload = (
            int(_env_float("BRAINS_JOBS_MAX_PAYLOAD", DEFAULT_MAX_PAYLOAD))
            if max_payload is None
            else max_payload
        )
        self.artifacts: ArtifactStore = self.host.make_artifact_store(
            artifacts or os.environ.get("BRAINS_JOBS_ARTIFACTS", DEFAULT_ARTIFACTS)
        )
        self._store: Store | None = None
        self._bus: EventBus | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._workers: set[Worker] = set()

    # -- lifetime ---------------------------------------------------------------------

    async def __aenter__(self) -> Runtime:
        store = self.host.make_store(self.url)
        async with contextlib.AsyncExitStack() as stack:
            await store.open(create_schema=self.create_schema)
            stack.push_async_callback(store.close)
            self._store = store
            self._bus = EventBus(store)
            tg = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(tg.cancel_scope.cancel)
            await tg.start(self._bus.run)
            for sub in self.host.subscribers():
                await tg.start(
                    lambda s=sub, **kw: self.bus.run_subscriber(
                        f"{s.plugin}:{s.name}", s.callback, types=s.types, kinds=s.kinds, **kw
                    )
                )
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            # The background tasks are cancelled, not failed: close them without the
            # caller's exception, which then propagates as it is (not in a group).
            await stack.aclose()
        self._store = None
        self._bus = None

    @property
    def store(self) -> Store:
        """The open job store."""
        if self._store is None:
            raise ConfigurationError("the runtime is not open: use `async with Runtime(...)`")
        return self._store

    @property
    def bus(self) -> EventBus:
        """The event bus."""
        if self._bus is None:
            raise ConfigurationError("the runtime is not open: use `async with Runtime(...)`")
        return self._bus

    # -- enqueue ----------------------------------------------------------------------

    def _prepare(
        self,
        job: JobDefinition[Any, Any] | str,
        inp: Any,
        *,
        queue: str | None = None,
        priority: int | None = None,
        run_at: datetime | None = None,
        delay: float | timedelta | None = None,
        unique_key: str | None = None,
        tags: Iterable[str] = (),
        metadata: dict[str, Any] | None = None,
        owner: str | None = None,
        max_attempts: int | None = None,
        parent_id: int | None = None,
    ) -> tuple[JobDefinition[Any, Any], NewJob]:
        definition = self.registry.get(job) if isinstance(job, str) else job
        payload = self._payload(definition, inp)
        if run_at is not None and delay is not None:
            raise ConfigurationError("give run_at or delay, not both")
        if delay is not None:
            seconds = delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
            run_at = datetime.now(UTC) + timedelta(seconds=seconds)
        if run_at is not None and run_at.tzinfo is None:
            raise ConfigurationError("run_at must be timezone-aware")
        attempts = definition.max_attempts if max_attempts is None else max_attempts
        if attempts < 1:
            raise ConfigurationError("max_attempts must be at least 1")
        return definition, NewJob(
            type=definition.name,
            queue=queue or definition.queue,
            priority=definition.priority if priority is None else priority,
            input=payload,
            max_attempts=attempts,
            run_at=run_at,
            unique_key=unique_key,
            tags=tuple(tags),
            metadata=metadata or {},
            owner=owner,
            parent_id=parent_id,
        )

    def _payload(self, definition: JobDefinition[Any, Any], inp: Any) -> str:
        """The validated input as JSON, within the size limit."""
        payload: str = definition.validate_input(inp).model_dump_json()
        if len(payload) > self.max_payload:
            raise PayloadTooLarge(
                f"input of job type {definition.name!r} is {len(payload)} bytes as JSON;"
                f" the limit is {self.max_payload} (store big data as artifacts)"
            )
        return payload

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
        timedelta), `unique_key` (a repeat returns the existing job, `created=False`),
        `tags`, `metadata`, `owner`, `max_attempts`. With `connection`, the job is
        inserted in that open transaction and exists only if it commits.
        """
        definition, new = self._prepare(job, inp, **options)
        (row,) = await self.store.enqueue([new], connection=connection)
        return JobHandle(self, row.id, definition, created=row.created)

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
                raise ConfigurationError("enqueue_many(job, inputs): inputs are missing")
            items = list(inputs)
            if not items:
                return []
            # One type, one set of options: check the options once, then only the inputs.
            definition, first = self._prepare(job, items[0], **options)
            news = [first]
            news.extend(
                NewJob(
                    first.type,
                    first.queue,
                    first.priority,
                    self._payload(definition, inp),
                    first.max_attempts,
                    first.run_at,
                    first.unique_key,
                    first.tags,
                    first.metadata,
                    first.owner,
                    first.parent_id,
                )
                for inp in items[1:]
            )
            rows = await self.store.enqueue(news, connection=connection)
            return [JobHandle(self, row.id, definition, created=row.created) for row in rows]
        requests = list(job)
        prepared = [self._prepare(r.job, r.input, **r.options) for r in requests]
        rows = await self.store.enqueue([new for _, new in prepared], connection=connection)
        return [
            JobHandle(self, row.id, definition, created=row.created)
            for (definition, _), row in zip(prepared, rows, strict=True)
        ]

    # -- inspect and administer -------------------------------------------------------

    def handle(self, job_id: int) -> JobHandle[Any]:
        """A handle for an existing job (untyped: the output is parsed by its type name)."""
        return JobHandle(self, job_id, None)

    async def get(self, job_id: int) -> Job:
        """The job record, or `JobNotFound`."""
        job = await self.store.get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

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
        filters = JobFilter(
            status=None if status is None else JobStatus(status),
            type=type,
            queue=queue,
            tag=tag,
            owner=owner,
            created_after=created_after,
            created_before=created_before,
        )
        return await self.store.list_jobs(filters, limit=limit, cursor=cursor)

    async def stats(self) -> Stats:
        """Job counts by type and status."""
        return await self.store.stats()

    async def cancel(self, job_id: int) -> JobStatus:
        """Cancel a job: a queued one never runs; a running one's handler is cancelled.

        Returns CANCELLED, or RUNNING when a running job was asked to stop (its worker
        cancels it within a second and it then becomes CANCELLED).
        `InvalidJobState` for a job that already finished.
        """
        status = await self.store.cancel(job_id)
        if status is JobStatus.RUNNING:
            for worker in self._workers:
                worker.cancel_running(job_id)
        return status

    async def retry(self, job_id: int) -> JobHandle[Any]:
        """Run a failed or cancelled job again, with a fresh allowance of attempts;
        the earlier attempts and their errors stay on the record.
        """
        job = await self.get(job_id)
        definition = self.registry.get(job.type) if job.type in self.registry else None
        extra = definition.max_attempts if definition else job.max_attempts
        await self.store.retry(job_id, extra)
        return JobHandle(self, job_id, definition)

    async def prune(
        self,
        older_than: float | timedelta,
        *,
        statuses: Iterable[JobStatus | str] = (
            JobStatus.SUCCEEDED,
            JobStatus.FAILED,
            JobStatus.CANCELLED,
        ),
    ) -> builtins.list[int]:
        """Delete finished jobs (of `statuses`) that finished more than `older_than`
        (seconds or a timedelta) ago, with their events and artifacts; returns their ids.
        Queued and running jobs are never pruned.
        """
        age = older_than if isinstance(older_than, timedelta) else timedelta(seconds=older_than)
        wanted = [JobStatus(s) for s in statuses]
        ids = await self.store.prune(datetime.now(UTC) - age, wanted)
        for job_id in ids:
            await self.artifacts.delete_job(job_id)
        return ids

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
        kind_set = None if kinds is None else {EventKind(k) for k in kinds}
        return self.bus.subscribe(
            job_id=job_id, types=types, kinds=kind_set, after=after, buffer=buffer
        )

    # -- work -------------------------------------------------------------------------

    def worker(self, **options: Any) -> Worker:
        """A worker on this runtime (see `Worker` for the options); run it yourself."""
        return Worker(self, **options)

    async def run_worker(
        self,
        concurrency: int | None = None,
        *,
        queues: Sequence[str] | None = None,
        burst: bool = False,
        shutdown_timeout: float | None = None,
        handle_signals: bool = False,
        **options: Any,
    ) -> Worker:
        """Run a worker until it stops: in `burst` mode once no job is ready or running
        (it waits for the retries of its own failed attempts, not for jobs scheduled
        later), otherwise when cancelled or (with `handle_signals`) on SIGTERM/SIGINT. The first
        signal stops claiming and lets running jobs finish within `shutdown_timeout`;
        a second one cancels them at once. Unfinished jobs go back to the queue.

        Options not given read `BRAINS_JOBS_CONCURRENCY` (default 10),
        `BRAINS_JOBS_QUEUES` (comma-separated; default all) and
        `BRAINS_JOBS_SHUTDOWN_TIMEOUT` (default 30 seconds).
        """
        if concurrency is None:
            concurrency = int(_env_float("BRAINS_JOBS_CONCURRENCY", 10))
        if queues is None:
            names = os.environ.get("BRAINS_JOBS_QUEUES", "")
            queues = [q.strip() for q in names.split(",") if q.strip()] or None
        if shutdown_timeout is None:
            shutdown_timeout = _env_float("BRAINS_JOBS_SHUTDOWN_TIMEOUT", 30.0)
        worker = self.worker(
            concurrency=concurrency,
            queues=queues,
            burst=burst,
            shutdown_timeout=shutdown_timeout,
            **options,
        )
        async with anyio.create_task_group() as tg:
            if handle_signals:
                tg.start_soon(self._watch_signals, worker)
            await worker.run()
            tg.cancel_scope.cancel()
        return worker

    @staticmethod
    async def _watch_signals(worker: Worker) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                if worker.stopping:
                    logger.warning(
                        "second %s: cancelling running jobs now", signal.Signals(signum).name
                    )
                    worker.stop(force=True)
                else:
                    logger.warning(
                        "%s: finishing running jobs (up to %.0fs), then stopping",
                        signal.Signals(signum).name,
                        worker.shutdown_timeout,
                    )
                    worker.stop()
