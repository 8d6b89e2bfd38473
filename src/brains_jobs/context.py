"""The `JobContext` a handler receives with its input."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, overload

from pydantic import BaseModel

from .models import EventKind
from .store.base import NewEvent

if TYPE_CHECKING:
    from .artifacts import ArtifactRef, ArtifactStore
    from .definitions import JobDefinition
    from .handle import JobHandle
    from .runtime import Runtime

Out = TypeVar("Out", bound=BaseModel)


class JobLogger:
    """A logger whose lines go to `logging` and are also kept with the job as events."""

    def __init__(self, logger: logging.Logger, emit: Callable[[str, str], None]) -> None:
        self._logger = logger
        self._emit = emit

    def _log(self, level: int, msg: str, args: tuple[Any, ...], exc_info: bool = False) -> None:
        text = msg % args if args else msg
        self._logger.log(level, text, exc_info=exc_info)
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


class JobContext:
    """What a running handler knows and can do: its job id and attempt, progress reports,
    follow-up jobs, a logger kept with the job, and the artifact store.
    """

    def __init__(
        self,
        *,
        runtime: Runtime,
        job_id: int,
        job_type: str,
        attempt: int,
        max_attempts: int,
        report: Callable[[NewEvent], None],
        artifacts: ArtifactStore,
    ) -> None:
        self.runtime = runtime
        self.job_id = job_id
        self.job_type = job_type
        self.attempt = attempt
        self.max_attempts = max_attempts
        self._report = report
        self._artifacts = artifacts
        self.logger = JobLogger(logging.getLogger(f"brains_jobs.job.{job_type}"), self._log_line)
        self.artifacts = _JobArtifacts(self)

    def _log_line(self, level: str, text: str) -> None:
        self._report(
            NewEvent(
                self.job_id,
                self.job_type,
                EventKind.LOG.value,
                self.attempt,
                message=text,
                data={"level": level},
            )
        )

    async def progress(self, value: float, message: str | None = None) -> None:
        """Report progress as a fraction from 0.0 to 1.0, with an optional message.

        The report becomes a `progress` event and the job's current progress; it is
        written with the worker's next batch, so calling this often is cheap.
        """
        if not (isinstance(value, int | float) and math.isfinite(value) and 0.0 <= value <= 1.0):
            raise ValueError(f"progress must be a fraction from 0.0 to 1.0, got {value!r}")
        self._report(
            NewEvent(
                self.job_id,
                self.job_type,
                EventKind.PROGRESS.value,
                self.attempt,
                progress=float(value),
                message=message,
            )
        )

    @overload
    async def enqueue(
        self, job: JobDefinition[Any, Out], inp: Any, **options: Any
    ) -> JobHandle[Out]: ...

    @overload
    async def enqueue(self, job: str, inp: Any, **options: Any) -> JobHandle[Any]: ...

    async def enqueue(
        self, job: JobDefinition[Any, Any] | str, inp: Any, **options: Any
    ) -> JobHandle[Any]:
        """Enqueue a follow-up job whose `parent_id` is this job (chaining)."""
        options.setdefault("parent_id", self.job_id)
        return await self.runtime.enqueue(job, inp, **options)


class _JobArtifacts:
    """The artifact store, seen from one job: `put` files the bytes under the job."""

    def __init__(self, ctx: JobContext) -> None:
        self._ctx = ctx

    async def put(
        self, data: bytes, *, name: str, content_type: str = "application/octet-stream"
    ) -> ArtifactRef:
        """Store `data` as an artifact of this job and return its reference."""
        return await self._ctx._artifacts.put(
            self._ctx.job_id, data, name=name, content_type=content_type
        )

    async def get(self, ref: ArtifactRef | str) -> bytes:
        """The bytes of any artifact (this job's or another's)."""
        return await self._ctx._artifacts.get(ref)
