"""The runtime's wiring: settings, plugins, registry, store, event bus, artifacts; its
lifetime (`async with`). The methods users call live in the modules beside this one,
each a mixin over this base.
"""

from __future__ import annotations

import contextlib
import logging
import time
import typing
import weakref
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Self

import anyio

from ..admin import JobAdmin
from ..config import Settings, load_settings
from ..definitions import JobDefinition
from ..durations import parse_seconds
from ..enqueueing import Enqueuer
from ..events import EventBus
from ..exceptions import ConfigurationError, StoreError
from ..plugins.host import PluginHost
from ..publishing import publish
from ..registry import Registry
from ..store.records import StoreOptions
from ..tracing import make_tracer
from .collector import first_full_collection

if TYPE_CHECKING:
    from types import TracebackType

    from sqlalchemy.ext.asyncio import AsyncConnection

    from ..artifacts import ArtifactStore
    from ..handle import JobSource
    from ..store.records import Enqueued, NewJob
    from ..store.roles import Store
    from ..worker import Worker

logger = logging.getLogger("brains_jobs.runtime")


class RuntimeBase:
    """Wiring and lifetime; see `Runtime` for the parameters."""

    @property
    def source(self) -> JobSource:
        """This runtime as the jobs its handles read (the assembled `Runtime` is one)."""
        return typing.cast("JobSource", self)

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
        tracing: bool | None = None,
        settings: Settings | None = None,
    ) -> None:
        given = {
            "database_url": url,
            "artifacts": artifacts,
            "lease": lease,
            "max_payload": max_payload,
            "retention": retention,
            "statement_timeout": statement_timeout,
            "tracing": tracing,
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
        #: Makes the spans of enqueues and attempts; None while tracing is off.
        self.tracer = make_tracer(settings.tracing)
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

    async def _publish(
        self, jobs: Sequence[NewJob], connection: AsyncConnection | None = None
    ) -> list[Enqueued]:
        """Insert new jobs: traced (with tracing on) and counted for the metrics."""
        return await publish(self.store, jobs, tracer=self.tracer, connection=connection)

    # -- lifetime ---------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        options = StoreOptions(self.url, self.settings.statement_timeout, must_exist=self.read_only)
        store = self.host.make_store(options)
        async with contextlib.AsyncExitStack() as stack:
            await self._open(store)
            stack.push_async_callback(store.close)
            if self.read_only and not self.create_schema:
                await _check_schema(store)
            self.artifacts.bind(store.store_id, store.describe())
            self._store = store
            self._admin = JobAdmin(store, self.registry, self.enqueuer)
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
        first_full_collection()
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


async def _check_schema(store: Store) -> None:
    """A read-only runtime needs a schema to read."""
    pending = await store.pending_migrations()
    if pending and pending[0] == "0001_initial":
        raise StoreError(f"no brains-jobs tables in {store.describe()} (nothing to read yet)")
