"""One attempt of one job: build its context, call its handler within its timeout, and
turn whatever happened into an `Outcome`.

Decisions made here, once for every store:
- a handler that returns a valid output succeeds, even when it returned after its
  timeout or a cancel request (its effect happened; running it again would repeat it);
- anything a handler raises that the worker did not cause is a failed attempt,
  `CancelledError`, `SystemExit` and `KeyboardInterrupt` included; it is retried after
  the job type's backoff unless the error is permanent or the attempts are used up;
- a cancel request that was accepted ends the job `cancelled` unless the attempt in
  flight succeeds;
- a `MemoryError` after which the process still cannot allocate a few megabytes (a
  handler that took the memory and kept it) ends the process at once, exit code
  `EXIT_STARVED`: a starved worker would fail every job it claims. Its leases lapse and
  the job that starved it counts a crash, as if the kernel had killed the worker.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import anyio
from pydantic import BaseModel, ValidationError

from ..context import JobContext
from ..exceptions import HandedOver, InvalidJobInput, PayloadTooLarge, PermanentError, Throttled
from ..handle import JobHandle
from ..metrics import COUNTS
from ..models import JobStatus
from ..payloads import dump_model, dumps, loads, size_over, storable, storable_json
from ..store.records import ClaimedJob, NewEvent, NewJob, Outcome
from ..versions import NEWER_VERSION_DELAY, upgrade_input

if TYPE_CHECKING:
    from ..artifacts import ArtifactStore
    from ..definitions import JobDefinition
    from ..enqueueing import Enqueuer
    from ..handle import JobSource, OutputParser
    from ..store.roles import Producer
    from ..tracing import JobTracer

logger = logging.getLogger("brains_jobs.worker")

PERMANENT = (PermanentError, InvalidJobInput, PayloadTooLarge, ValidationError)

EXIT_STARVED = 70  # the process's exit code when a handler left it without memory
STARVED_PROBE = 4 * 2**20  # bytes that must still be allocatable after a MemoryError


@dataclass(eq=False)
class Held:
    """A job this worker holds a lease on, from its claim until its outcome is buffered."""

    job: ClaimedJob
    limited: bool = False  # claimed as a job of a limited type: it holds limit keys
    scope: anyio.CancelScope | None = None  # its lane's scope, while its handler runs
    started_at: float | None = None  # monotonic time the handler was called
    deadline: float | None = None  # monotonic time its timeout fires
    start_written: bool = False  # the store knows the handler started
    cancel_requested: bool = False  # someone asked to cancel the job
    cancelled_at: float | None = None  # when this worker cancelled the handler
    lost: bool = False  # another worker holds the lease now: the result is discarded
    fenced: bool = False  # the lease lapsed by this worker's clock
    stuck: bool = False  # ignored its cancellation: its slot was given back
    ctx: JobContext | None = None

    def cancel(self) -> None:
        """Stop the handler (or skip it, before it starts)."""
        if self.cancelled_at is None:
            self.cancelled_at = time.monotonic()
        if self.scope is not None:
            self.scope.cancel()
        if self.ctx is not None:
            self.ctx._cancel()


class AttemptRunner:
    """Runs attempts for one worker."""

    def __init__(
        self,
        *,
        worker_id: str,
        store: Producer,
        enqueuer: Enqueuer,
        source: JobSource,
        artifacts: ArtifactStore,
        report: Callable[[NewEvent], None],
        overrun: Callable[[Held], bool],
        tracer: JobTracer | None = None,
    ) -> None:
        self.worker_id = worker_id
        self.tracer = tracer
        self.overrun = overrun
        self.store = store
        self.enqueuer = enqueuer
        self.source = source
        self.artifacts = artifacts
        self.report = report
        self.max_payload = enqueuer.max_payload
        self._spawn = self.spawn  # one bound method for every context
        #: The outcome of one attempt of `entry.job` (never raises for the handler's
        #: sake; only cancellation from outside the attempt propagates). With tracing
        #: on, the attempt runs in a `process` span; without, it is the attempt itself.
        self.run: Callable[[Held, JobDefinition[Any, Any]], Awaitable[Outcome]] = (
            self._attempt if tracer is None else self._traced
        )

    async def _traced(self, entry: Held, definition: JobDefinition[Any, Any]) -> Outcome:
        assert self.tracer is not None
        with self.tracer.process(entry.job) as span:
            outcome = await self._attempt(entry, definition)
            self.tracer.ended(span, outcome)
        return outcome

    async def _attempt(self, entry: Held, definition: JobDefinition[Any, Any]) -> Outcome:
        job = entry.job
        ctx = JobContext(
            job.id,
            job.type,
            job.attempt,
            job.max_attempts,
            self.report,
            self.artifacts,
            self._spawn,
            self.enqueuer.registry,
            self.source,
        )
        entry.ctx = ctx
        begun = time.monotonic()
        upgraded: str | None = None
        try:
            if job.version > definition.version:
                return _newer_version(job, definition)
            if job.version < definition.version:
                data = upgrade_input(
                    job.type, _decode(job), job.version, definition.version, definition.upgrade
                )
                upgraded = self.enqueuer.payload(definition, data)
                ctx.logger.info(
                    "input upgraded from version %d to %d", job.version, definition.version
                )
                inp = definition.validate_input(data)
            else:
                inp = definition.validate_input_json(job.input)
            if definition.timeout is None and not definition.threaded:
                # no timer and no thread: the handler is awaited here, one coroutine less
                entry.started_at = time.monotonic()
                out, timed_out = await definition.handler(ctx, inp), False
            else:
                out, timed_out = await self._call(definition, ctx, inp, entry)
            if out is None:
                raise TimeoutError(
                    f"timed out after {definition.timeout:g}s" if timed_out else "cancelled"
                )
            output = self._output(definition, job, out)
        except BaseException as exc:
            if _cancelled_from_outside(exc, entry):
                raise
            if isinstance(exc, MemoryError):
                exit_if_starved()
            outcome = self.failure(job, definition, exc, entry)
        else:
            spawned = ctx._spawned
            # positionally (keywords cost this call a third more): output, error,
            # retry_in, message, attempt, follow-up jobs
            outcome = Outcome(
                job.id,
                job.lease_token,
                JobStatus.SUCCEEDED,
                output,
                None,
                0.0,
                None,
                job.attempt,
                tuple(spawned) if spawned else (),
            )
        seconds = time.monotonic() - begun
        COUNTS.observe_run(job.type, job.queue, seconds)
        if outcome.status is not JobStatus.SUCCEEDED or logger.isEnabledFor(logging.INFO):
            _log(job, outcome, seconds)
        if (
            upgraded is None
            and definition.on_success is None
            and definition.on_failure is None
            and not ctx._usage
        ):
            return outcome  # nothing to add to it
        return _with_extras(outcome, definition, ctx, upgraded)

    async def _call(
        self, definition: JobDefinition[Any, Any], ctx: JobContext, inp: Any, entry: Held
    ) -> tuple[Any, bool]:
        """The return value of a handler that has a timeout or runs in a thread (None
        when it was cancelled before returning), and whether its timeout fired.
        """
        handler = definition.handler
        entry.started_at = time.monotonic()
        if definition.timeout is None:  # no timer to arm (nor to pay for)
            return await _in_thread(handler, ctx, inp, lambda: self.overrun(entry)), False
        entry.deadline = entry.started_at + definition.timeout
        out: Any = None
        with anyio.move_on_after(definition.timeout) as timer:
            if definition.threaded:
                out = await _in_thread(handler, ctx, inp, lambda: self.overrun(entry))
            else:
                out = await handler(ctx, inp)
        if timer.cancel_called:
            ctx._cancel()
        return out, timer.cancelled_caught

    def _output(self, definition: JobDefinition[Any, Any], job: ClaimedJob, out: Any) -> str:
        # The exact class first: isinstance() of a pydantic model class is a Python call
        # (its metaclass's __instancecheck__).
        if type(out) is not definition.output_model and not isinstance(
            out, definition.output_model
        ):
            data = out.model_dump() if isinstance(out, BaseModel) else out
            out = definition.output_model.model_validate(data)
        try:
            text = dump_model(out)
        except ValueError as exc:
            # Lone surrogates in the handler's text: stored with U+FFFD, as its log lines.
            try:
                data = storable_json(out.model_dump(mode="python"))
                text = dump_model(definition.output_model.model_validate(data))
            except ValueError:
                raise PermanentError(f"the output {exc}") from None
        size = size_over(text, self.max_payload)
        if size:
            raise PayloadTooLarge(
                f"output of job type {job.type!r} is {size} bytes as JSON; the limit"
                f" is {self.max_payload} (store big data as artifacts)"
            )
        return text

    def failure(
        self,
        job: ClaimedJob,
        definition: JobDefinition[Any, Any],
        exc: BaseException,
        entry: Held,
    ) -> Outcome:
        if isinstance(exc, HandedOver) and not entry.cancel_requested:
            return Outcome(
                job.id,
                job.lease_token,
                JobStatus.RUNNING,
                message=f"handed over to outside completion: report within {exc.ttl:g}s",
                attempt=job.attempt,
                hand_over=exc.ttl,
            )
        if isinstance(exc, Throttled) and not entry.cancel_requested:
            return Outcome(
                job.id,
                job.lease_token,
                JobStatus.QUEUED,
                retry_in=exc.retry_after,
                message=f"throttled: trying again in {exc.retry_after:g}s; attempt given back",
                attempt=job.attempt,
                give_back=True,
                throttle=exc.retry_after,
                throttle_key=exc.key,
            )
        error = attempt_error(job.attempt, exc)
        summary = f"attempt {job.attempt} failed: {error['type']}: {error['message']}"
        if entry.cancel_requested:
            return Outcome(
                job.id,
                job.lease_token,
                JobStatus.CANCELLED,
                error=error,
                message=f"{summary}; cancelled by request",
                attempt=job.attempt,
            )
        permanent = isinstance(exc, PERMANENT)
        if permanent or job.attempt >= job.max_attempts:
            reason = "permanent error" if permanent else f"out of attempts ({job.max_attempts})"
            return Outcome(
                job.id,
                job.lease_token,
                JobStatus.FAILED,
                error=error,
                message=f"{summary}; {reason}",
                attempt=job.attempt,
            )
        delay = definition.retry.delay(job.attempt)
        return Outcome(
            job.id,
            job.lease_token,
            JobStatus.QUEUED,
            error=error,
            retry_in=delay,
            message=f"{summary}; retrying in {delay:.2f}s",
            attempt=job.attempt,
        )

    async def spawn(
        self,
        spawned: list[NewJob],
        job: OutputParser[Any] | str,
        inp: Any,
        options: dict[str, Any],
    ) -> JobHandle[Any]:
        """Validate a follow-up job now, reserve its id, and keep it for the outcome."""
        definition, new = self.enqueuer.prepare(job, inp, options)  # type: ignore[arg-type]
        (new.id,) = await self.store.reserve_ids(1)
        if self.tracer is not None:
            with self.tracer.send([new]):  # a child of this attempt's `process` span
                pass
        spawned.append(new)
        return JobHandle(self.source, new.id, definition)


def _newer_version(job: ClaimedJob, definition: JobDefinition[Any, Any]) -> Outcome:
    """Leave a job of a version this worker does not know yet for one that does."""
    return Outcome(
        job.id,
        job.lease_token,
        JobStatus.QUEUED,
        retry_in=NEWER_VERSION_DELAY,
        message=(
            f"enqueued under version {job.version} of {job.type!r}; this worker runs"
            f" version {definition.version}: left for a worker that knows it"
        ),
        attempt=job.attempt,
        give_back=True,
    )


def _with_extras(
    outcome: Outcome, definition: JobDefinition[Any, Any], ctx: JobContext, upgraded: str | None
) -> Outcome:
    """`outcome` with the attempt's usage, its upgraded input, and whether a lifecycle
    callback is due (the plain outcome itself when there is none of these).
    """
    callback = (outcome.status is JobStatus.SUCCEEDED and definition.on_success is not None) or (
        outcome.status is JobStatus.FAILED and definition.on_failure is not None
    )
    used = ctx.usage_so_far()
    if not (callback or used or upgraded):
        return outcome
    return replace(
        outcome,
        usage=dumps(used) if used else None,
        callback=callback,
        input=upgraded,
        version=definition.version if upgraded else None,
    )


def _decode(job: ClaimedJob) -> Any:
    try:
        return loads(job.input)
    except ValueError as exc:
        raise InvalidJobInput(job.type, [{"loc": (), "msg": str(exc)}]) from None


def exit_if_starved() -> None:
    """End the process now when it cannot allocate `STARVED_PROBE` bytes (see the
    module docstring). Nothing here allocates before the exit: the message is a
    constant.
    """
    try:
        probe = bytearray(STARVED_PROBE)
    except MemoryError:
        os.write(2, b"brains-jobs: a job left this worker without memory; exiting\n")
        os._exit(EXIT_STARVED)
    del probe


def _cancelled_from_outside(exc: BaseException, entry: Held) -> bool:
    """True when `exc` is a cancellation of the worker itself (shutdown, or the host
    cancelling it), which must propagate; a `CancelledError` the handler raised on its
    own is the handler's failure.
    """
    if not isinstance(exc, anyio.get_cancelled_exc_class()):
        return False
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def _in_thread(
    handler: Callable[..., Any], ctx: JobContext, inp: Any, wait_on_cancel: Callable[[], bool]
) -> Any:
    """Run a plain handler in a daemon thread of its own.

    A thread cannot be interrupted. When the wait is cancelled, `ctx.cancelled` is set.
    On a timeout (`wait_on_cancel()` is True) the attempt then waits for the thread to
    end, holding the job's lease while the worker gives the slot to another job: a
    result it still returns stands (its effect happened), an error makes the attempt a
    timeout. On any other cancellation (cancel request, lost lease, shutdown) the thread
    is left to end on its own and its result is dropped.
    """
    future: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def target() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(handler(ctx, inp))
        except BaseException as exc:  # delivered to the awaiting coroutine
            future.set_exception(exc)

    threading.Thread(target=target, name=f"brains_jobs job {ctx.job_id}", daemon=True).start()
    waiting = asyncio.wrap_future(future)
    try:
        return await asyncio.shield(waiting)
    except asyncio.CancelledError:
        ctx._cancel()
        if not wait_on_cancel():
            raise
        with anyio.CancelScope(shield=True):
            try:
                return await waiting
            except Exception:
                pass
        raise


def attempt_error(attempt: int, exc: BaseException) -> dict[str, Any]:
    """The stored record of a failed attempt's error (text made storable)."""
    return {
        "attempt": attempt,
        "type": type(exc).__name__,
        "message": storable(str(exc) or type(exc).__name__),
        "traceback": storable("".join(traceback.format_exception(exc))),
        "at": datetime.now(UTC).isoformat(),
    }


def _log(job: ClaimedJob, outcome: Outcome, seconds: float) -> None:
    """One line per attempt: id, type, attempt, outcome, duration, and the error."""
    if outcome.status is JobStatus.SUCCEEDED:
        if logger.isEnabledFor(logging.INFO):
            logger.info(
                "job %d %s attempt %d succeeded in %.1fms",
                job.id,
                job.type,
                job.attempt,
                seconds * 1000,
                extra={"job_id": job.id, "job_type": job.type},
            )
        return
    level = logging.INFO if outcome.status is JobStatus.QUEUED else logging.WARNING
    logger.log(
        level,
        "job %d %s attempt %d %s in %.1fms: %s",
        job.id,
        job.type,
        job.attempt,
        "will retry" if outcome.status is JobStatus.QUEUED else outcome.status.value,
        seconds * 1000,
        outcome.message,
        extra={"job_id": job.id, "job_type": job.type},
    )
