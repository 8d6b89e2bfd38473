"""Running workers and maintenance, and looking at them: stats, workers, health."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import anyio

from ..limits import Concurrency, KeySettings, Limit, Rate, key_settings
from ..maintenance import MaintenanceContext, MaintenanceGroup
from ..maintenance.health import check_health, live_workers
from ..maintenance.reaper import unserved_types
from ..maintenance.service import default_holder
from ..models import Health, LimitInfo, Stats, WorkerInfo
from ..observability.server import serve_metrics
from ..worker import Worker
from ..worker.signals import stop_on_signals
from .base import RuntimeBase


class OperationsMixin(RuntimeBase):
    """`run_worker`, `worker`, `maintenance`, `stats`, `workers`, `health`, limits."""

    async def set_limit(
        self,
        key: str,
        *,
        concurrency: int | None = None,
        rate: int | None = None,
        per: float | str | timedelta = 1.0,
        burst: int = 1,
    ) -> None:
        """Set limit key `key` for every worker, from its next claim on: at most
        `concurrency` jobs at once, `rate` starts per `per` (None: no such limit).
        The limits a job type declares are only a key's first settings.
        """
        settings: builtins.list[Limit] = []
        if concurrency is not None:
            settings.append(Concurrency(key, concurrency))
        if rate is not None:
            settings.append(Rate(key, rate, per=per, burst=burst))
        (merged,) = key_settings(tuple(settings), None) or (KeySettings(key),)
        await self.store.set_limit(merged)

    async def limits(self) -> builtins.list[LimitInfo]:
        """Every limit key: its settings and how many of its jobs run now."""
        return await self.store.limits()

    async def stats(self) -> Stats:
        """Job counts by type and status, and the types no live worker knows."""
        stats = await self.store.stats()
        live = await self.workers()
        return stats.model_copy(update={"unserved": unserved_types(stats, live)})

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
            source=self.source,
            tracer=self.tracer,
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
        metrics_port: int | None = None,
        **options: Any,
    ) -> Worker:
        """Run a worker, with the maintenance services beside it, until it stops: in
        `burst` mode once no job is ready or running (it waits for the retries of its
        own failed attempts, not for jobs scheduled later), otherwise when cancelled or
        (with `handle_signals`) on SIGTERM/SIGINT. The first signal stops claiming and
        lets running jobs finish within `shutdown_timeout`; a second one cancels them at
        once. Unfinished jobs go back to the queue.

        With `metrics_port` (`BRAINS_JOBS_METRICS_PORT`), Prometheus metrics are served
        at `/metrics` on that port while the worker runs (needs the `web` extra).

        Options not given come from the settings (`BRAINS_JOBS_CONCURRENCY`,
        `BRAINS_JOBS_QUEUES`, `BRAINS_JOBS_SHUTDOWN_TIMEOUT`...); see `Worker`.
        """
        port = self.settings.metrics_port if metrics_port is None else metrics_port
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
            if port is not None:
                await tg.start(serve_metrics, self.store, port)
            if maintenance:
                await tg.start(self.maintenance().run)
            await worker.run()
            tg.cancel_scope.cancel()
        return worker
