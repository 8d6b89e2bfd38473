"""The worker: claims jobs in batches and runs them with bounded concurrency.

One task group holds the worker's services (the result writer, the lease keeper, its
registry entry, the stall watch); another holds `concurrency` lanes, coroutines that
each run one claimed job at a time from a local buffer. The claimer keeps that buffer
filled with batches; the batch size adapts (like TCP slow start) between `concurrency`
and `max_prefetch`: it grows while the lanes run dry, and shrinks while claimed jobs
wait, so that short jobs travel in large batches and slow jobs are not hoarded by one
worker. Jobs that crashed a worker before run alone, when the worker is otherwise idle.

A job ends in one of these ways: its handler returns (succeeded), raises (retried after
a backoff, or failed when out of attempts or the error is permanent), is cancelled on
request (cancelled), or is interrupted by shutdown (released to the queue, the attempt
not counted). A job whose lease this worker lost is abandoned without writing anything:
another worker owns it now.
"""

from __future__ import annotations

import collections
import logging
import os
import socket
import time
import uuid
from dataclasses import replace
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup, TaskStatus

from .._signal import Signal
from ..exceptions import ConfigurationError, LeaseLost
from ..models import JobStatus
from ..store.records import Outcome
from .attempt import AttemptRunner, Held
from .callbacks import CallbackRunner
from .claiming import Claiming
from .leases import LeaseKeeper
from .presence import Presence
from .results import ResultWriter
from .stalls import StallWatch

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..artifacts import ArtifactStore
    from ..enqueueing import Enqueuer
    from ..handle import JobSource
    from ..registry import Registry
    from ..store.roles import Store
    from ..tracing import JobTracer

logger = logging.getLogger("brains_jobs.worker")

MAX_PREFETCH = 1000  # claimed jobs a worker holds beyond its running ones, at most


def default_worker_id() -> str:
    """`host:pid:random`, unique per worker process and run."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker(Claiming):
    """Runs jobs of its registry's types until stopped (or, in burst mode, until nothing
    is left to do). Start it with `await task_group.start(worker.run)`, or through
    `Runtime.run_worker()`, which also runs the maintenance services.

    :param store: the job store (its `WorkQueue` and `Maintenance` roles are used).
    :param registry: the job types this worker runs (all of them).
    :param enqueuer: validates the follow-up jobs handlers enqueue.
    :param artifacts: the artifact store handed to handlers.
    :param source: where the handles of follow-up jobs read jobs (the runtime).
    :param concurrency: jobs run at once (`BRAINS_JOBS_CONCURRENCY`, default 10).
    :param queues: the queues to take jobs from; None: all (`BRAINS_JOBS_QUEUES`).
    :param burst: return once no job is ready or running (`BRAINS_JOBS_BURST`).
    :param shutdown_timeout: seconds running jobs get to finish after `stop()`.
    :param lease: seconds a claimed job is leased between renewals (default 30).
    :param prefetch: claimed jobs that may wait for a lane; None adapts it.
    :param max_prefetch: the most an adaptive prefetch grows to (default 1000).
    :param worker_id: the worker's name; default `host:pid:random`.
    :param flush_timeout: at exit, seconds to keep trying to write results.
    :param stall_threshold: a loop blocked this long is logged with its job; 0: off.
    :param max_jobs: stop claiming after this many jobs (None: no limit).
    :param max_seconds: stop claiming after this many seconds (None: no limit).
    :param tracer: makes a `process` span of each attempt (None: tracing off; see
        `brains_jobs.tracing`).
    """

    def __init__(
        self,
        *,
        store: Store,
        registry: Registry,
        enqueuer: Enqueuer,
        artifacts: ArtifactStore,
        source: JobSource,
        concurrency: int = 10,
        queues: Sequence[str] | None = None,
        burst: bool = False,
        shutdown_timeout: float = 30.0,
        lease: float = 30.0,
        prefetch: int | None = None,
        max_prefetch: int = MAX_PREFETCH,
        worker_id: str | None = None,
        flush_timeout: float = 10.0,
        stall_threshold: float = 1.0,
        max_jobs: int | None = None,
        max_seconds: float | None = None,
        tracer: JobTracer | None = None,
    ) -> None:
        if concurrency < 1:
            raise ConfigurationError("concurrency must be at least 1")
        if lease <= 0 or shutdown_timeout < 0 or flush_timeout < 0:
            raise ConfigurationError(
                "lease must be positive, shutdown_timeout and flush_timeout not negative"
            )
        if max_jobs is not None and max_jobs < 1:
            raise ConfigurationError("max_jobs must be at least 1")
        self.store = store
        self.registry = registry
        self.concurrency = concurrency
        self.queues = list(queues) if queues else None
        self.burst = burst
        self.shutdown_timeout = shutdown_timeout
        self.flush_timeout = flush_timeout
        self.lease = lease
        self.max_jobs = max_jobs
        self.max_seconds = max_seconds
        # `prefetch` fixes how many claimed jobs may wait for a lane; None adapts it.
        self.fixed_prefetch = prefetch
        self.prefetch = concurrency if prefetch is None else prefetch
        self.max_prefetch = max(max_prefetch, self.prefetch)
        self.id = worker_id or default_worker_id()
        self.types = registry.names()
        self._held: dict[int, Held] = {}
        self._ready: collections.deque[Held] = collections.deque()
        self._ready_signal = Signal()
        self._slot_freed = Signal()
        self._wake = Signal()
        self._stopping = False
        self._forced = False
        self._stuck = 0
        self._lanes: TaskGroup | None = None
        self._claimed = 0
        # Jobs of limited types are claimed apart, and only by workers that run some.
        self._limited = any(d.limits for d in registry)
        self._limited_quiet_until = 0.0
        # The writer's flush count when a limited claim last met the limits (-1: it
        # did not), whether a new job was announced since, and until when a worker of
        # limited types leaves plain claims out after one found nothing.
        self._limited_blocked_at = -1
        self._announced = False
        self._plain_quiet_until = 0.0
        self._retries: dict[int, float] = {}  # own failed attempts: job id -> retry time
        self.processed = 0
        self.callbacks = CallbackRunner(store, registry)
        self.writer = ResultWriter(store, self.id, self.callbacks.add, lambda: bool(self._held))
        self.runner = AttemptRunner(
            worker_id=self.id,
            store=store,
            enqueuer=enqueuer,
            source=source,
            artifacts=artifacts,
            report=self.writer.report,
            overrun=self._overrun,
            tracer=tracer,
        )
        self.leases = LeaseKeeper(
            store=store,
            worker_id=self.id,
            lease=lease,
            held=self._held.values,
            writer=self.writer,
            cancel=self.cancel_running,
            stuck=self._on_stuck,
        )
        self.presence = Presence(
            store,
            worker_id=self.id,
            queues=self.queues,
            types=self.types,
            concurrency=concurrency,
            running=lambda: len(self._held),
            interval=min(5.0, max(lease / 3, 0.1)),
        )
        self.stalls = StallWatch(stall_threshold, self.id)

    # -- control ----------------------------------------------------------------------

    def stop(self, *, force: bool = False) -> None:
        """Stop claiming; running jobs get `shutdown_timeout` seconds to finish, or are
        cancelled (and released to the queue) at once with `force`.
        """
        if not self._stopping:
            logger.info("worker %s stopping: no new jobs are claimed", self.id)
        self._stopping = True
        self._forced = self._forced or force
        self._wake.notify()
        self._slot_freed.notify()
        self._ready_signal.notify()

    @property
    def stopping(self) -> bool:
        """True once `stop()` was called."""
        return self._stopping

    def cancel_running(self, job_id: int) -> bool:
        """Cancel job `job_id` if this worker holds it; True if it did."""
        entry = self._held.get(job_id)
        if entry is None:
            return False
        entry.cancel_requested = True
        entry.cancel()  # before it starts, this makes the lane skip the job
        return True

    # -- main loop --------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run until stopped; nothing is left `running` in the store when this returns."""
        if not self.types:
            raise ConfigurationError("the worker has no job types: register some first")
        logger.info(
            "worker %s started: concurrency %d, queues %s, types %s",
            self.id,
            self.concurrency,
            self.queues or "all",
            ", ".join(self.types),
        )
        await self.presence.register()
        try:
            async with anyio.create_task_group() as services:
                services.start_soon(self.writer.run)
                services.start_soon(self.leases.run)
                services.start_soon(self.presence.run)
                services.start_soon(self.stalls.run)
                services.start_soon(self.callbacks.run)
                if self.max_seconds is not None:
                    services.start_soon(self._stop_after, self.max_seconds)
                try:
                    async with anyio.create_task_group() as lanes:
                        self._lanes = lanes
                        for _ in range(self.concurrency):
                            lanes.start_soon(self._lane)
                        task_status.started()
                        await self._claim_loop()
                        self._release_waiting()
                        await self._drain(lanes)
                finally:
                    self._release_waiting()
                    with anyio.CancelScope(shield=True):
                        await self._final_flush()
                    services.cancel_scope.cancel()
        finally:
            await self.presence.remove()
        logger.info("worker %s stopped after %d job(s)", self.id, self.processed)

    async def _stop_after(self, seconds: float) -> None:
        await anyio.sleep(seconds)
        self.stop()

    async def _final_flush(self) -> None:
        if await self.writer.flush(deadline=time.monotonic() + self.flush_timeout):
            await self.callbacks.drain(min(self.flush_timeout, 5.0))
            return
        pending = self.writer.pending_leases()
        logger.error(
            "worker %s: %d result(s) could not be written within %.0fs; jobs %s go back to"
            " the queue (or, if the database stays away, are retried once their leases"
            " expire)",
            self.id,
            len(pending),
            self.flush_timeout,
            [i for i, _ in pending],
        )
        with anyio.move_on_after(min(self.flush_timeout, 5.0)):
            try:
                await self.store.release(pending, f"released by worker {self.id}: result lost")
            except Exception as exc:
                logger.error("worker %s: releasing them failed too: %s", self.id, exc)

    def _release_waiting(self) -> None:
        """Hand claimed jobs that no lane started back to the queue."""
        while self._ready:
            entry = self._ready.popleft()
            self._forget(entry)
            if not entry.lost:
                self.writer.release(entry.job.id, entry.job.lease_token)
        self._slot_freed.notify()
        self._ready_signal.notify()

    def _forget(self, entry: Held) -> None:
        self._held.pop(entry.job.id, None)
        self._slot_freed.notify()

    async def _drain(self, lanes: TaskGroup) -> None:
        with anyio.move_on_after(self.shutdown_timeout):
            while not self._forced and self._held:
                await self._slot_freed.wait(0.05)
        if self._held:
            logger.warning(
                "worker %s: %d job(s) still running after %.1fs; cancelling and releasing them",
                self.id,
                len(self._held),
                self.shutdown_timeout,
            )
        lanes.cancel_scope.cancel()

    # -- one job ----------------------------------------------------------------------

    async def _lane(self) -> None:
        """Run claimed jobs one at a time, all in one cancel scope: cancelling the job
        in flight cancels the scope, and the lane goes on in a new one. (A scope of each
        job's own cost the worker a fifth of its time per job.)
        """
        while True:
            scope = anyio.CancelScope()
            entry: Held | None = None  # the job in flight
            try:
                with scope:
                    while True:
                        if not self._ready:
                            if self._stopping:
                                return
                            await self._ready_signal.wait()
                            continue
                        entry = self._ready.popleft()
                        outcome = await self._attempt(entry, scope)
                        done, entry = entry, None
                        self._settle(done, outcome)
                        if done.stuck and self._unstuck(done):
                            return
                        # Cancelled as the handler returned: leave the scope now. (Its
                        # cancellation always comes with `cancelled_at`, which is cheaper
                        # to read than the scope's property.)
                        if done.cancelled_at is not None and scope.cancel_called:
                            break
            finally:
                # Cancelled in flight by `scope` (one from outside released the job).
                if entry is not None and scope.cancel_called:
                    self._settle(entry, None)
            if entry is not None and self._unstuck(entry):
                return

    def _unstuck(self, entry: Held) -> bool:
        """True when `entry` was stuck: its lane ends (another took its place)."""
        if entry.stuck:
            self._stuck -= 1
        return entry.stuck

    def _on_stuck(self, entry: Held) -> None:
        """Give a stuck job's slot to another job: one more lane while it runs on."""
        if entry.stuck or self._lanes is None:
            return
        entry.stuck = True
        self._stuck += 1
        self._lanes.start_soon(self._lane)
        self._slot_freed.notify()

    def _overrun(self, entry: Held) -> bool:
        """A threaded handler ran past its timeout: wait for it (holding the lease) and
        give its slot away; not when the job was cancelled, lost, or the worker forced.
        """
        if entry.cancelled_at is not None or self._forced:
            return False
        self._on_stuck(entry)
        return True

    async def _attempt(self, entry: Held, scope: anyio.CancelScope) -> Outcome | None:
        """Mark the job started and run its attempt in `scope` (None: it did not run, or
        ended without an outcome). A cancellation propagates; one from outside releases
        the job first.
        """
        job = entry.job
        try:
            if entry.cancel_requested or entry.lost or entry.fenced:
                return None
            definition = self.registry.get(job.type)
            if job.mark_start:
                lost = await self.store.mark_started([(job.id, job.lease_token)])
                entry.start_written = True
                entry.lost = bool(lost)
                if entry.lost:
                    return None
            entry.scope = scope
            if entry.cancelled_at is not None:
                scope.cancel()  # cancelled while its start was written
            try:
                return await self.runner.run(entry, definition)
            finally:
                entry.scope = None
        except anyio.get_cancelled_exc_class():
            if not scope.cancel_called and not entry.lost:  # from outside: shutdown
                self.writer.release(job.id, job.lease_token)
            raise
        except Exception as exc:  # the store failed on a start mark: try again later
            logger.warning("job %d: could not record its start (%s); released", job.id, exc)
            return None
        finally:
            self._forget(entry)

    def _settle(self, entry: Held, outcome: Outcome | None) -> None:
        """Hand what became of an attempt to the result writer."""
        job = entry.job
        if entry.lost:
            return
        if outcome is None and entry.cancel_requested:
            outcome = Outcome(
                job.id,
                job.lease_token,
                JobStatus.CANCELLED,
                message="cancelled by request",
                attempt=job.attempt,
            )
        elif outcome is None and entry.started_at is not None:
            error = LeaseLost(f"job {job.id}: the worker could not renew the lease in time")
            outcome = self.runner.failure(job, self.registry.get(job.type), error, entry)
        elif outcome is None:  # never started (fenced while it waited for a lane)
            self.writer.release(job.id, job.lease_token)
        if outcome is not None:
            if job.has_children:
                outcome = replace(outcome, has_children=True)
            self.processed += 1
            if outcome.status is JobStatus.QUEUED and (
                not outcome.give_back or outcome.throttle is not None
            ):
                # A burst worker waits for the retries of its own failed and throttled
                # attempts, not for jobs of a version it does not know.
                self._retries[job.id] = time.monotonic() + outcome.retry_in
            self.writer.add(outcome, entry.limited, (job.type, job.queue))  # urgent, labels
