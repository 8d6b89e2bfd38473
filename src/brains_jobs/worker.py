"""The worker: claims jobs in batches and runs them with bounded concurrency.

One task group holds the worker's services (writing results, heartbeats, lease rescue);
another holds `concurrency` lanes, coroutines that each run one claimed job at a time
from a local buffer. The claimer keeps that buffer filled with batches; the batch size
adapts (like TCP slow start) between `concurrency` and `max_prefetch`: it grows while
the lanes run dry, and shrinks while claimed jobs wait, so that short jobs travel in
large batches and slow jobs are not hoarded by one worker. Results, progress reports and
log lines go into a buffer that one writer flushes in a single store call per batch, so
the database sees one transaction per batch, never one per job.

A job ends in one of four ways: its handler returns (succeeded), raises (retried after a
backoff, or failed when out of attempts or the error is permanent), is cancelled on
request (cancelled), or is interrupted by shutdown (released to the queue, the attempt
not counted). A job whose lease this worker lost is abandoned without writing anything:
another worker owns it now.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import socket
import time
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup, TaskStatus
from pydantic import BaseModel, ValidationError

from ._signal import Signal
from .context import JobContext
from .exceptions import ConfigurationError, InvalidJobInput, PayloadTooLarge, PermanentError
from .models import JobStatus
from .store.base import ClaimedJob, NewEvent, Outcome

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .definitions import JobDefinition
    from .runtime import Runtime

logger = logging.getLogger("brains_jobs.worker")

FLUSH_BATCH = 500  # results written at once at most
MAX_PREFETCH = 1000  # claimed jobs a worker holds beyond its running ones, at most
FLUSH_DELAY = 0.002  # seconds a result may wait for others to share its transaction


@dataclass(eq=False)
class _Running:
    job: ClaimedJob
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    started: bool = False
    cancel_requested: bool = False
    lost: bool = False


def _default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    """Runs jobs of the runtime's registered types until stopped (or, in burst mode,
    until nothing is left to do). Start it with `await task_group.start(worker.run)`.
    """

    def __init__(
        self,
        runtime: Runtime,
        *,
        concurrency: int = 10,
        queues: Sequence[str] | None = None,
        burst: bool = False,
        shutdown_timeout: float = 30.0,
        lease: float | None = None,
        prefetch: int | None = None,
        max_prefetch: int = MAX_PREFETCH,
        worker_id: str | None = None,
    ) -> None:
        if concurrency < 1:
            raise ConfigurationError("concurrency must be at least 1")
        lease = runtime.lease if lease is None else lease
        if lease <= 0 or shutdown_timeout < 0:
            raise ConfigurationError("lease must be positive and shutdown_timeout not negative")
        self.runtime = runtime
        self.store = runtime.store
        self.concurrency = concurrency
        self.queues = list(queues) if queues else None
        self.burst = burst
        self.shutdown_timeout = shutdown_timeout
        self.lease = lease
        # `prefetch` fixes how many claimed jobs may wait for a lane; None adapts it.
        self.fixed_prefetch = prefetch
        self.prefetch = concurrency if prefetch is None else prefetch
        self.max_prefetch = max(max_prefetch, self.prefetch)
        self.id = worker_id or _default_worker_id()
        self.types = runtime.registry.names()
        self._running: dict[int, _Running] = {}
        self._ready: collections.deque[_Running] = collections.deque()
        self._ready_signal = Signal()
        self._outcomes: list[Outcome] = []
        self._events: list[NewEvent] = []
        self._releases: list[tuple[int, str]] = []
        self._flush_wanted = Signal()
        self._flush_lock = anyio.Lock()
        self._slot_freed = Signal()
        self._wake = Signal()
        self._stopping = False
        self._forced = False
        self._retries: dict[int, float] = {}  # own failed attempts: job id -> retry time
        self.processed = 0

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
        """Cancel job `job_id` if this worker runs it; True if it did."""
        entry = self._running.get(job_id)
        if entry is None:
            return False
        entry.cancel_requested = True
        entry.scope.cancel()  # before it starts, this makes the lane skip the job
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
        self.runtime._workers.add(self)
        try:
            await self._run(task_status)
        finally:
            self.runtime._workers.discard(self)
        logger.info("worker %s stopped after %d job(s)", self.id, self.processed)

    async def _run(self, task_status: TaskStatus[None]) -> None:
        async with anyio.create_task_group() as services:
            services.start_soon(self._flush_loop)
            services.start_soon(self._heartbeat_loop)
            services.start_soon(self._rescue_loop)
            try:
                async with anyio.create_task_group() as lanes:
                    for n in range(self.concurrency):
                        lanes.start_soon(self._lane, name=f"lane {n}")
                    task_status.started()
                    await self._claim_loop()
                    self._release_waiting()
                    await self._drain(lanes)
            finally:
                self._release_waiting()
                with anyio.CancelScope(shield=True):
                    await self._flush_all()
                services.cancel_scope.cancel()

    def _release_waiting(self) -> None:
        """Hand claimed jobs that no lane started back to the queue."""
        while self._ready:
            entry = self._ready.popleft()
            self._forget(entry)
            if not entry.lost:
                self._releases.append((entry.job.id, entry.job.lease_token))
        self._flush_wanted.notify()
        self._ready_signal.notify()

    def _forget(self, entry: _Running) -> None:
        self._running.pop(entry.job.id, None)
        self._slot_freed.notify()

    async def _drain(self, lanes: TaskGroup) -> None:
        with anyio.move_on_after(self.shutdown_timeout):
            while not self._forced and self._running:
                await self._slot_freed.wait(0.05)
        if self._running:
            logger.warning(
                "worker %s: %d job(s) still running after %.1fs; cancelling and releasing them",
                self.id,
                len(self._running),
                self.shutdown_timeout,
            )
        lanes.cancel_scope.cancel()

    async def _claim_loop(self) -> None:
        while not self._stopping:
            free = self.concurrency + self.prefetch - len(self._running)
            if free <= 0:
                await self._slot_freed.wait(1.0)
                continue
            waiting = len(self._ready)
            try:
                claimed = await self.store.claim(
                    worker_id=self.id,
                    queues=self.queues,
                    types=self.types,
                    limit=free,
                    lease=self.lease,
                )
            except Exception:
                logger.exception("worker %s: claiming failed; trying again", self.id)
                await anyio.sleep(1.0)
                continue
            for job in claimed:
                self._retries.pop(job.id, None)
                entry = _Running(job)
                self._running[job.id] = entry
                self._ready.append(entry)
            if claimed:
                self._ready_signal.notify()
            if len(claimed) == free:
                self._adapt(waiting)
                # Claim again once the lanes have taken most of this batch.
                while len(self._ready) > self.concurrency and not self._stopping:
                    await self._slot_freed.wait(1.0)
                continue
            if claimed:
                # The queue had fewer ready jobs than asked for: let the lanes start
                # them before looking again.
                await anyio.lowlevel.checkpoint()
            if self.burst and not self._running and await self._nothing_left():
                return
            await self._idle_wait()

    def _adapt(self, waiting: int) -> None:
        """Grow the batch while the lanes ran dry before a full claim; shrink it while
        claimed jobs were still waiting for a lane.
        """
        if self.fixed_prefetch is not None:
            return
        if waiting == 0:
            self.prefetch = min(self.prefetch * 2, self.max_prefetch)
        elif waiting > self.prefetch // 2:
            self.prefetch = max(self.prefetch // 2, self.concurrency)

    async def _nothing_left(self) -> bool:
        """Burst mode is done when no job is ready and none of this worker's own failed
        attempts waits for its retry. Jobs scheduled for later by others are left.
        """
        await self._flush_all()
        # A retry is forgotten when this worker claims it again, or a while after it was
        # due (another worker may have taken it); its stored run time is a little later
        # than the due time noted here, since results are written in batches.
        now = time.monotonic()
        self._retries = {i: due for i, due in self._retries.items() if due + 5.0 > now}
        if self._retries:
            return False
        ready = await self.store.next_ready(self.queues, self.types)
        return ready is None or ready > datetime.now(UTC)

    async def _idle_wait(self) -> None:
        # Arm the wake-ups before reading the queue, so that a notification arriving
        # during the read is not lost.
        wakeups = [self.store.work_signal.armed(), self._wake.armed()]
        if self._running:
            wakeups.append(self._slot_freed.armed())
        timeout = self.store.poll_interval
        try:
            ready = await self.store.next_ready(self.queues, self.types)
        except Exception:
            logger.exception("worker %s: reading the queue failed", self.id)
            ready = None
        if ready is not None:
            timeout = min(timeout, max(0.0, (ready - datetime.now(UTC)).total_seconds()))
        if timeout <= 0 or self._stopping or any(w.is_set() for w in wakeups):
            return
        with anyio.move_on_after(timeout):
            async with anyio.create_task_group() as tg:

                async def wait_on(event: anyio.Event) -> None:
                    await event.wait()
                    tg.cancel_scope.cancel()

                for event in wakeups:
                    tg.start_soon(wait_on, event)

    # -- one job ----------------------------------------------------------------------

    async def _lane(self) -> None:
        while True:
            if not self._ready:
                if self._stopping:
                    return
                await self._ready_signal.wait()
                continue
            await self._run_job(self._ready.popleft())

    async def _run_job(self, entry: _Running) -> None:
        job = entry.job
        outcome: Outcome | None = None
        try:
            if not (entry.cancel_requested or entry.lost):
                definition = self.runtime.registry.get(job.type)
                with entry.scope:
                    entry.started = True
                    outcome = await self._attempt(definition, job)
        except anyio.get_cancelled_exc_class():
            # Cancelled from outside (shutdown, or the host cancelled the worker).
            if not entry.lost:
                self._releases.append((job.id, job.lease_token))
                self._flush_wanted.notify()
            raise
        finally:
            self._forget(entry)
        if entry.lost:
            logger.warning("job %d: lease lost; its result is discarded", job.id)
        elif outcome is not None:
            self._add_outcome(outcome)
        elif entry.cancel_requested:
            self._add_outcome(
                Outcome(job.id, job.lease_token, JobStatus.CANCELLED, message="cancelled")
            )

    async def _attempt(self, definition: JobDefinition[Any, Any], job: ClaimedJob) -> Outcome:
        ctx = JobContext(
            runtime=self.runtime,
            job_id=job.id,
            job_type=job.type,
            attempt=job.attempt,
            max_attempts=job.max_attempts,
            report=self._report,
            artifacts=self.runtime.artifacts,
        )
        try:
            inp = definition.validate_input(json.loads(job.input))
            if definition.timeout is None:
                out = await definition.handler(ctx, inp)
            else:
                with anyio.move_on_after(definition.timeout) as timer:
                    out = await definition.handler(ctx, inp)
                if timer.cancelled_caught:
                    raise TimeoutError(f"timed out after {definition.timeout:g}s")
            if not isinstance(out, definition.output_model):
                data = out.model_dump() if isinstance(out, BaseModel) else out
                out = definition.output_model.model_validate(data)
            output = out.model_dump_json()
            if len(output) > self.runtime.max_payload:
                raise PayloadTooLarge(
                    f"output of job type {job.type!r} is {len(output)} bytes as JSON; the limit"
                    f" is {self.runtime.max_payload} (store big data as artifacts)"
                )
        except (PermanentError, InvalidJobInput, PayloadTooLarge, ValidationError) as exc:
            return self._failure(job, definition, exc, permanent=True)
        except Exception as exc:
            return self._failure(job, definition, exc, permanent=False)
        self.processed += 1
        return Outcome(job.id, job.lease_token, JobStatus.SUCCEEDED, output=output)

    def _failure(
        self,
        job: ClaimedJob,
        definition: JobDefinition[Any, Any],
        exc: Exception,
        *,
        permanent: bool,
    ) -> Outcome:
        self.processed += 1
        error = {
            "attempt": job.attempt,
            "type": type(exc).__name__,
            "message": str(exc) or type(exc).__name__,
            "traceback": "".join(traceback.format_exception(exc)),
            "at": datetime.now(UTC).isoformat(),
        }
        summary = f"attempt {job.attempt} failed: {error['type']}: {error['message']}"
        if permanent or job.attempt >= job.max_attempts:
            reason = "permanent error" if permanent else f"out of attempts ({job.max_attempts})"
            logger.warning("job %d (%s) failed: %s; %s", job.id, job.type, summary, reason)
            return Outcome(
                job.id,
                job.lease_token,
                JobStatus.FAILED,
                error=error,
                message=f"{summary}; {reason}",
            )
        delay = definition.retry.delay(job.attempt)
        self._retries[job.id] = time.monotonic() + delay
        logger.info("job %d (%s) %s; retrying in %.2fs", job.id, job.type, summary, delay)
        return Outcome(
            job.id,
            job.lease_token,
            JobStatus.QUEUED,
            error=error,
            retry_in=delay,
            message=f"{summary}; retrying in {delay:.2f}s",
        )

    # -- writing results --------------------------------------------------------------

    def _report(self, event: NewEvent) -> None:
        self._events.append(event)
        self._flush_wanted.notify()

    def _add_outcome(self, outcome: Outcome) -> None:
        self._outcomes.append(outcome)
        self._flush_wanted.notify()

    async def _flush_loop(self) -> None:
        while True:
            if not (self._outcomes or self._events or self._releases):
                await self._flush_wanted.wait()
            if len(self._outcomes) < FLUSH_BATCH:
                await anyio.sleep(FLUSH_DELAY)
            await self._flush_all()

    async def _flush_all(self) -> None:
        """Write every buffered result, event and release; retry until the store takes them.

        One flush at a time, and each write is shielded: a batch taken from the buffers
        is always written, even when the worker is being cancelled.
        """
        async with self._flush_lock:
            delay = 0.05
            while self._outcomes or self._events or self._releases:
                outcomes = self._outcomes[:FLUSH_BATCH]
                del self._outcomes[:FLUSH_BATCH]
                events, self._events = self._events, []
                releases, self._releases = self._releases, []
                try:
                    with anyio.CancelScope(shield=True):
                        await self._write(outcomes, events, releases)
                except Exception:
                    logger.exception("worker %s: writing results failed; trying again", self.id)
                    # Nothing is dropped: the batch goes back to the front of the buffers.
                    self._outcomes[:0] = outcomes
                    self._events[:0] = events
                    self._releases[:0] = releases
                    await anyio.sleep(delay)
                    delay = min(delay * 2, 2.0)

    async def _write(
        self, outcomes: list[Outcome], events: list[NewEvent], releases: list[tuple[int, str]]
    ) -> None:
        if outcomes or events:
            rejected = await self.store.finish(outcomes, events)
            if rejected:
                logger.warning("late results rejected for jobs %s", rejected)
        if releases:
            await self.store.release(releases, f"released by worker {self.id} at shutdown")

    # -- leases -----------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        tick = min(0.5, self.lease / 4)
        beat_every = self.lease / 3
        last_beat = time.monotonic()
        while True:
            await anyio.sleep(tick)
            if not self._running:
                last_beat = time.monotonic()
                continue
            try:
                if time.monotonic() - last_beat >= beat_every:
                    leases = [(r.job.id, r.job.lease_token) for r in self._running.values()]
                    lost, asked = await self.store.heartbeat(leases, self.lease)
                    last_beat = time.monotonic()
                    for job_id in lost & set(self._running):
                        self._running[job_id].lost = True
                        self._running[job_id].scope.cancel()
                    for job_id in asked:
                        self.cancel_running(job_id)
                else:
                    for job_id in await self.store.cancel_requested(list(self._running)):
                        self.cancel_running(job_id)
            except Exception:
                logger.exception("worker %s: heartbeat failed; trying again", self.id)

    async def _rescue_loop(self) -> None:
        while True:
            try:
                rescued = await self.store.rescue_expired()
                if rescued:
                    logger.warning("re-queued jobs whose lease expired: %s", rescued)
            except Exception:
                logger.exception("worker %s: lease rescue failed", self.id)
            await anyio.sleep(max(0.5, self.lease / 2))
