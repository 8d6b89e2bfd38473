"""`Runtime`: the host application's one object. It wires settings, plugins, the store,
the event bus, the artifact store, workers and maintenance; the work itself is done by
the pieces it wires.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import time
import weakref
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar, overload

import anyio
from pydantic import BaseModel

from .admin import JobAdmin, job_filter, page_limit
from .config import Settings, load_settings
from .definitions import JobDefinition
from .durations import parse_seconds
from .enqueueing import Enqueuer, JobRequest
from .events import EventBus, Subscription
from .exceptions import ConfigurationError, InvalidJobOption, StoreError
from .handle import JobHandle
from .maintenance import MaintenanceContext, MaintenanceGroup
from .maintenance.health import check_health, live_workers
from .maintenance.reaper import unserved_types
from .maintenance.service import default_holder
from .models import EventKind, Health, Job, JobPage, JobStatus, Stats, WorkerInfo
from .plugins.host import PluginHost
from .registry import Registry
from .store.records import StoreOptions
from .worker import Worker
from .worker.signals import stop_on_signals

if TYPE_CHECKING:
    from collections.abc import Collection
    from datetime import datetime
    from types import TracebackType

    from sqlalchemy.ext.asyncio import AsyncConnection

    from .artifacts import ArtifactStore
    from .handle import OutputParser
    from .store.roles import Store

Out = TypeVar("Out", bound=BaseModel)

logger = logging.getLogger("brains_jobs.runtime")

_FINAL = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.SKIPPED)


class Runtime:
    """Registry, plugins, store, events, workers and maintenance behind one `async with`.

    ``async with Runtime("sqlite+aiosqlite:///jobs.db") as rt:`` opens the store
    (creating its tables unless `create_schema=False`), loads plugins (entry points
    unless `load_entrypoints=False`, plus `plugins` given in code: modules, objects or
    `"package.module"` strings) and starts the event bus.

    :param url: the database (`BRAINS_JOBS_DATABASE_URL`; default
        `sqlite+aiosqlite:///brains_jobs.db`).
    :param plugins: plugins to load besides the installed ones (and those named by
        `BRAINS_JOBS_PLUGIN_MODULES`).
    :param jobs: job definitions to register directly.
    :param load_entrypoints: load the installed plugins (filtered by
        `BRAINS_JOBS_PLUGINS_ALLOW` and `BRAINS_JOBS_PLUGINS_DENY`).
    :param create_schema: create or upgrade the tables on opening.
    :param read_only: never create a database (commands that only read).
    :param wait_for_db: seconds to keep retrying an unreachable database on opening.
    :param artifacts: the artifact store (`BRAINS_JOBS_ARTIFACTS`).
    :param lease: seconds a claimed job is leased (`BRAINS_JOBS_LEASE`, default 30).
    :param max_payload: largest input or output in bytes (`BRAINS_JOBS_MAX_PAYLOAD`).
    :param retention: how long finished jobs are kept, a `Retention`
        (`BRAINS_JOBS_RETENTION_SUCCEEDED`, `_FAILED`, `_CANCELLED`).
    :param statement_timeout: the longest one statement may take (default 10s).
    :param settings: a whole `Settings` object instead (the keywords above override it).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        plugins: Iterable[object | str] = (),
        jobs: Iterable[JobDefinition[Any, Any]] = (),
        load_entrypoints: bool = True,
        create_schema: bool = True,
        read_only: bool = False,
        wait_for_db: float | str | timedelta = 0.0,
        artifacts: str | None = None,
        lease: float | str | timedelta | None = None,
        max_payload: int | None = None,
        retention: Any = None,
        statement_timeout: float | str | timedelta | None = None,
        settings: Settings | None = None,
    ) -> None:
        given = {
            "database_url": url,
            "artifacts": artifacts,
            "lease": lease,
            "max_payload": max_payload,
            "retention": retention,
            "statement_timeout": statement_timeout,
        }
        if settings is None:
            settings = load_settings(**given)
        elif any(v is not None for v in given.values()):
            settings = load_settings(**{**settings.model_dump(), **given})
        self.settings = settings
        self.url = settings.database_url
        self.wait_for_db = parse_seconds(wait_for_db, name="wait_for_db")
        self.host = PluginHost(
            [*settings.plugin_modules, *plugins],
            load_entrypoints=load_entrypoints,
            allow=settings.plugins_allow,
            deny=settings.plugins_deny,
        )
        self.registry = Registry()
        self.host.register_jobs(self.registry)
        for definition in jobs:
            self.registry.add(definition)
        self.create_schema = create_schema and not read_only
        self.read_only = read_only
        self.enqueuer = Enqueuer(self.registry, max_payload=settings.max_payload)
        self.artifacts: ArtifactStore = self.host.make_artifact_store(settings.artifacts)
        self._store: Store | None = None
        self._bus: EventBus | None = None
        self._admin: JobAdmin | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._workers: weakref.WeakSet[Worker] = weakref.WeakSet()

    @property
    def lease(self) -> float:
        """Seconds a claimed job is leased to its worker between renewals."""
        return self.settings.lease

    @property
    def max_payload(self) -> int:
        """The largest job input or output, in bytes of JSON."""
        return self.settings.max_payload

    # -- lifetime ---------------------------------------------------------------------

    async def __aenter__(self) -> Runtime:
        options = StoreOptions(self.url, self.settings.statement_timeout, must_exist=self.read_only)
        store = self.host.make_store(options)
        async with contextlib.AsyncExitStack() as stack:
            await self._open(store)
            stack.push_async_callback(store.close)
            if self.read_only and not self.create_schema:
                await _check_schema(store)
            self.artifacts.bind(store.store_id, store.describe())
            self._store = store
            self._admin = JobAdmin(store, self.registry)
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

    async def _open(self, store: Store) -> None:
        """Open the store, retrying for `wait_for_db` seconds while it is unreachable."""
        deadline = time.monotonic() + self.wait_for_db
        delay = 0.5
        while True:
            try:
                await store.open(create_schema=self.create_schema)
                return
            except StoreError as exc:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise
                logger.warning(
                    "waiting for the database %s (%s); retrying in %.1fs, for %.0fs more",
                    store.describe(),
                    exc,
                    min(delay, left),
                    left,
                )
                await anyio.sleep(min(delay, left))
                delay = min(delay * 2, 5.0)

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
        self._admin = None

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

    @property
    def admin(self) -> JobAdmin:
        """Job actions (cancel, retry)."""
        if self._admin is None:
            raise ConfigurationError("the runtime is not open: use `async with Runtime(...)`")
        return self._admin

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
        timedelta), `unique_key` (a repeat returns the existing job, `created=False`),
        `tags`, `metadata`, `owner`, `max_attempts`. With `connection`, the job is
        inserted in that open transaction and exists only if it commits.
        """
        definition, new = self.enqueuer.prepare(job, inp, options)
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
                raise InvalidJobOption("inputs", "enqueue_many(job, inputs): inputs are missing")
            definition, news = self.enqueuer.prepare_many(job, inputs, options)
            rows = await self.store.enqueue(news, connection=connection) if news else []
            return [JobHandle(self, row.id, definition, created=row.created) for row in rows]
        requests = list(job)
        prepared = [self.enqueuer.prepare(r.job, r.input, r.options) for r in requests]
        rows = await self.store.enqueue([new for _, new in prepared], connection=connection)
        return [
            JobHandle(self, row.id, definition, created=row.created)
            for (definition, _), row in zip(prepared, rows, strict=True)
        ]

    # -- inspect and administer -------------------------------------------------------

    def handle(self, job_id: int) -> JobHandle[Any]:
        """A handle for an existing job (untyped: the output is parsed by its type name)."""
        return JobHandle(self, job_id, None)

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

    async def stats(self) -> Stats:
        """Job counts by type and status, and the types no live worker knows."""
        stats = await self.store.stats()
        live = await self.workers()
        return stats.model_copy(update={"unserved": unserved_types(stats, live)})

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
        return JobHandle(self, job_id, self.output_parser((await self.get(job_id)).type))

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

    async def workers(self) -> builtins.list[WorkerInfo]:
        """The live workers of this database (dead ones are left out until reaped)."""
        return await live_workers(self.store, self.settings)

    async def health(self) -> Health:
        """Whether the database answers and its schema is current, with the live
        workers, the leader and the oldest queued job.
        """
        return await check_health(self.store, self.settings)

    # -- work -------------------------------------------------------------------------

    def worker(self, **options: Any) -> Worker:
        """A worker on this runtime (see `Worker` for the options; those not given
        come from the settings); run it yourself, or with `run_worker`.
        """
        s = self.settings
        defaults: dict[str, Any] = {
            "concurrency": s.concurrency,
            "queues": s.queues or None,
            "burst": s.burst,
            "shutdown_timeout": s.shutdown_timeout,
            "lease": s.lease,
            "prefetch": s.prefetch,
            "max_prefetch": s.max_prefetch,
            "worker_id": s.worker_id,
            "flush_timeout": s.flush_timeout,
            "stall_threshold": s.stall_threshold,
        }
        defaults.update({k: v for k, v in options.items() if v is not None})
        worker = Worker(
            store=self.store,
            registry=self.registry,
            enqueuer=self.enqueuer,
            artifacts=self.artifacts,
            source=self,
            **defaults,
        )
        self._workers.add(worker)
        return worker

    def maintenance(self) -> MaintenanceGroup:
        """The maintenance services of this runtime, ready to run."""
        ctx = MaintenanceContext(
            store=self.store,
            registry=self.registry,
            artifacts=self.artifacts,
            settings=self.settings,
            holder=default_holder(),
        )
        return MaintenanceGroup(ctx, self.host.services())

    async def run_worker(
        self,
        concurrency: int | None = None,
        *,
        queues: Sequence[str] | None = None,
        burst: bool | None = None,
        shutdown_timeout: float | None = None,
        handle_signals: bool = False,
        maintenance: bool = True,
        **options: Any,
    ) -> Worker:
        """Run a worker, with the maintenance services beside it, until it stops: in
        `burst` mode once no job is ready or running (it waits for the retries of its
        own failed attempts, not for jobs scheduled later), otherwise when cancelled or
        (with `handle_signals`) on SIGTERM/SIGINT. The first signal stops claiming and
        lets running jobs finish within `shutdown_timeout`; a second one cancels them at
        once. Unfinished jobs go back to the queue.

        Options not given come from the settings (`BRAINS_JOBS_CONCURRENCY`,
        `BRAINS_JOBS_QUEUES`, `BRAINS_JOBS_SHUTDOWN_TIMEOUT`...); see `Worker`.
        """
        worker = self.worker(
            concurrency=concurrency,
            queues=queues,
            burst=burst,
            shutdown_timeout=shutdown_timeout,
            **options,
        )
        async with anyio.create_task_group() as tg:
            if handle_signals:
                tg.start_soon(stop_on_signals, worker)
            if maintenance:
                await tg.start(self.maintenance().run)
            await worker.run()
            tg.cancel_scope.cancel()
        return worker


async def _check_schema(store: Store) -> None:
    """A read-only runtime needs a schema to read."""
    pending = await store.pending_migrations()
    if pending and pending[0] == "0001_initial":
        raise StoreError(f"no brains-jobs tables in {store.describe()} (nothing to read yet)")


__all__ = ["JobRequest", "Runtime", "Settings"]
