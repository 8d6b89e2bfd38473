"""The `JobContext` a handler receives with its input."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, NoReturn, Protocol, TypeVar, overload

from .exceptions import HandedOver, InvalidJobOption, JobCancelled
from .handle import JobHandle
from .models import EventKind
from .payloads import storable
from .store.records import NewEvent, NewJob

if TYPE_CHECKING:
    from .artifacts import ArtifactRef, ArtifactStore
    from .handle import JobSource, OutputParser

Out = TypeVar("Out")

MAX_TTL = 30 * 86400.0  # the longest a tracking job may go without a report


class JobTypes(Protocol):
    """The job types a worker knows, by name (read-only; the registry is one)."""

    def __contains__(self, name: object) -> bool: ...

    def get(self, name: str) -> Any:
        """The `JobDefinition` named `name`, or `UnknownJobType`."""
        ...

    def names(self) -> list[str]:
        """The known names, sorted."""
        ...


class Spawner(Protocol):
    """Enqueues a handler's follow-up jobs as part of its attempt (the worker's), keeping
    each one's `NewJob` in `spawned` (the context's list) for the attempt's outcome.
    """

    async def __call__(
        self,
        spawned: list[NewJob],
        job: OutputParser[Any] | str,
        inp: Any,
        options: dict[str, Any],
    ) -> JobHandle[Any]: ...


class JobLogger:
    """A logger whose lines go to `logging` and are also kept with the job as events.

    Each line also carries the job's id and attempt (`job_id`, `attempt` record
    attributes), so log formatters and shippers can tell jobs apart.
    """

    def __init__(
        self,
        logger: logging.Logger,
        emit: Callable[[str, str], None],
        extra: dict[str, Any],
    ) -> None:
        self._logger = logger
        self._emit = emit
        self._extra = extra

    def _log(self, level: int, msg: str, args: tuple[Any, ...], exc_info: bool = False) -> None:
        text = msg % args if args else msg
        self._logger.log(level, text, exc_info=exc_info, extra=self._extra)
        self._emit(logging.getLevelName(level).lower(), text)

    def debug(self, msg: str, *args: Any) -> None:
        """Log at DEBUG level."""
        self._log(logging.DEBUG, msg, args)

    def info(self, msg: str, *args: Any) -> None:
        """Log at INFO level."""
        self._log(logging.INFO, msg, args)

    def warning(self, msg: str, *args: Any) -> None:
        """Log at WARNING level."""
        self._log(logging.WARNING, msg, args)

    def error(self, msg: str, *args: Any) -> None:
        """Log at ERROR level."""
        self._log(logging.ERROR, msg, args)

    def exception(self, msg: str, *args: Any) -> None:
        """Log at ERROR level with the current exception's traceback."""
        self._log(logging.ERROR, msg, args, exc_info=True)


# Usage is reported rarely, from the event loop or a handler's thread: one lock serves
# every context (a lock of each context's own would cost every attempt its making).
_USAGE_LOCK = threading.Lock()


class JobContext:
    """What a running handler knows and can do: its job id and attempt, progress reports,
    follow-up jobs, a logger kept with the job, the artifact store, and whether it was
    asked to stop.
    """

    def __init__(  # called positionally once per attempt: keywords cost a third more
        self,
        job_id: int,
        job_type: str,
        attempt: int,
        max_attempts: int,
        report: Callable[[NewEvent], None],
        artifacts: ArtifactStore,
        spawn: Spawner,
        job_types: JobTypes,
        source: JobSource,
    ) -> None:
        self.job_id = job_id
        self.job_type = job_type
        self.attempt = attempt
        self.max_attempts = max_attempts
        self._report = report
        self._spawn = spawn
        # The follow-up jobs enqueued so far, for the worker (None until the first: most
        # attempts enqueue none, and pay for no list).
        self._spawned: list[NewJob] | None = None
        #: The job types this worker knows: a handler may run another type's handler
        #: in place (`ctx.job_types.get(name).handler(ctx, inp)`).
        self.job_types = job_types
        self._source = source
        # Set from the event loop, read from a handler's thread: a plain attribute is
        # enough, and a context holds nothing that points back at it, so it is freed
        # as soon as its attempt ends (no garbage cycle per job).
        self._cancelled = False
        self._usage: dict[str, float] = {}
        self._logger: JobLogger | None = None
        self._artifact_store = artifacts
        self._artifacts: _JobArtifacts | None = None

    @property
    def artifacts(self) -> _JobArtifacts:
        """The artifact store, seen from this job: `put` files the bytes under the job."""
        if self._artifacts is None:
            self._artifacts = _JobArtifacts(self._artifact_store, self.job_id)
        return self._artifacts

    @property
    def logger(self) -> JobLogger:
        """A logger whose lines are also kept with the job as `log` events."""
        if self._logger is None:
            self._logger = JobLogger(
                logging.getLogger(f"brains_jobs.job.{self.job_type}"),
                partial(_log_line, self._report, self.job_id, self.job_type, self.attempt),
                {"job_id": self.job_id, "job_type": self.job_type, "attempt": self.attempt},
            )
        return self._logger

    # -- cancellation -----------------------------------------------------------------

    @property
    def cancelled(self) -> bool:
        """True once the attempt should stop (timeout, cancel request, lost lease,
        shutdown). Code running in a thread checks it: a thread cannot be interrupted.
        """
        return self._cancelled

    def raise_if_cancelled(self) -> None:
        """Raise `JobCancelled` when the attempt should stop (for code in threads)."""
        if self._cancelled:
            raise JobCancelled(self.job_id)

    def _cancel(self) -> None:
        self._cancelled = True

    # -- reports ----------------------------------------------------------------------

    async def progress(self, value: float, message: str | None = None) -> None:
        """Report progress as a fraction from 0.0 to 1.0, with an optional message.

        The report becomes a `progress` event and the job's current progress; it is
        written with the worker's next batch, so calling this often is cheap.
        """
        self.report_progress(value, message)

    def report_progress(self, value: float, message: str | None = None) -> None:
        """`progress()` for synchronous code (a plain `def` handler, or a thread)."""
        if not (isinstance(value, int | float) and math.isfinite(value) and 0.0 <= value <= 1.0):
            raise ValueError(f"progress must be a fraction from 0.0 to 1.0, got {value!r}")
        self._report(
            NewEvent(
                self.job_id,
                self.job_type,
                EventKind.PROGRESS.value,
                self.attempt,
                progress=float(value),
                message=None if message is None else storable(str(message)),
            )
        )

    # -- usage and hand-over ----------------------------------------------------------

    def usage(self, **amounts: float) -> None:
        """Add what this attempt used (`cost_cents=3, input_tokens=1200`): numbers, summed
        per name over the job's attempts and in `Runtime.stats()` by type and owner.
        Written with the attempt's outcome, whether it succeeds or not.
        """
        for name, amount in amounts.items():
            if (
                not isinstance(amount, int | float)
                or isinstance(amount, bool)
                or not math.isfinite(amount)
            ):
                raise ValueError(f"usage {name!r} must be a finite number, got {amount!r}")
            if len(name) > 64:
                raise ValueError(f"usage name {name[:64]!r}... is longer than 64 characters")
        with _USAGE_LOCK:
            for name, amount in amounts.items():
                self._usage[name] = self._usage.get(name, 0) + amount

    def usage_so_far(self) -> dict[str, float]:
        """The usage this attempt reported so far."""
        if not self._usage:  # most attempts report none: no lock to take
            return {}
        with _USAGE_LOCK:
            return dict(self._usage)

    def hand_over(self, ttl: float | timedelta) -> NoReturn:
        """End this attempt without an outcome: the job stays `running` as a tracking job
        that an outside process finishes (`Runtime.complete(job_id, output)`, `fail`)
        and keeps alive (`Runtime.report`) at least every `ttl`, or it fails as lost.
        Follow-up jobs enqueued by this attempt are dropped.
        """
        seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else ttl
        if not isinstance(seconds, int | float) or not 0 < seconds <= MAX_TTL:
            raise ValueError(f"ttl must be from 0 to {MAX_TTL:g} seconds, got {ttl!r}")
        raise HandedOver(float(seconds))

    # -- follow-up jobs ---------------------------------------------------------------

    @overload
    async def enqueue(self, job: OutputParser[Out], inp: Any, **options: Any) -> JobHandle[Out]: ...

    @overload
    async def enqueue(self, job: str, inp: Any, **options: Any) -> JobHandle[Any]: ...

    async def enqueue(
        self, job: OutputParser[Any] | str, inp: Any, **options: Any
    ) -> JobHandle[Any]:
        """Enqueue a follow-up job whose `parent_id` is this job.

        It is part of this attempt: validated now and given its id, but written (and
        visible to anyone) only when this attempt succeeds, in the same transaction as
        the result. An attempt that fails or times out leaves no follow-up jobs behind.
        """
        if options.get("depends_on"):
            raise InvalidJobOption(
                "depends_on",
                "a follow-up job is written with this attempt's success and cannot wait"
                " for other jobs; enqueue it with Runtime.enqueue",
            )
        options.setdefault("parent_id", self.job_id)
        if self._spawned is None:
            self._spawned = []
        return await self._spawn(self._spawned, job, inp, options)

    def handle(self, job: OutputParser[Out], job_id: int) -> JobHandle[Out]:
        """A typed handle for job `job_id` of type `job` (a parent given by id)."""
        return JobHandle(self._source, job_id, job)

    async def parent_output(self, parent: JobHandle[Out]) -> Out:
        """The typed output of a job this one depends on (`depends_on=[parent]`); it has
        succeeded by the time this job runs (under `on_parent_failure="run"` it may have
        failed: `JobFailed` then).
        """
        return parent.output_of(await self._source.get(parent.id))


def _log_line(
    report: Callable[[NewEvent], None],
    job_id: int,
    job_type: str,
    attempt: int,
    level: str,
    text: str,
) -> None:
    report(
        NewEvent(
            job_id,
            job_type,
            EventKind.LOG.value,
            attempt,
            message=storable(text),
            data={"level": level},
        )
    )


class _JobArtifacts:
    """The artifact store, seen from one job: `put` files the bytes under the job."""

    def __init__(self, store: ArtifactStore, job_id: int) -> None:
        self._store = store
        self._job_id = job_id

    async def put(
        self, data: bytes, *, name: str, content_type: str = "application/octet-stream"
    ) -> ArtifactRef:
        """Store `data` as an artifact of this job and return its reference."""
        return await self._store.put(self._job_id, data, name=name, content_type=content_type)

    async def get(self, ref: ArtifactRef | str) -> bytes:
        """The bytes of any artifact (this job's or another's)."""
        return await self._store.get(ref)
