"""The one exception tree of brains-jobs.

BrainsJobsError
├── ConfigurationError       bad URL, bad option value
├── PluginError              a plugin failed to load, or two plugins clash
├── UnknownJobType           no registered definition has that name
├── InvalidJobInput          the input failed validation (names the field)
├── InvalidJobOutput         an output given by hand failed validation (names the field)
├── InvalidJobOption         an enqueue option has a bad value (names the option)
├── PayloadTooLarge          the serialized input or output exceeds the limit
├── DuplicateJob             a unique key is held (enqueue with on_conflict="reject")
├── JobNotFound              no job has that id
├── TemplateNotFound         no job template has that name
├── InvalidJobState          the action does not apply to the job's status
├── JobError                 raised by `JobHandle.result()`
│   ├── JobFailed            every attempt failed; carries the last error
│   └── JobCancelled         the job was cancelled
├── LeaseLost                a worker lost a job's lease (recorded as the attempt's error)
├── StoreError               the database failed (driver errors are wrapped here)
├── ArtifactNotFound         no artifact under that key (brains_jobs.artifacts)
├── PermanentError           raised by a handler: fail now, do not retry
│   └── UpgradeFailed        a job's input could not be upgraded to today's version
└── Throttled                raised by a handler: try again later, no attempt used

HandedOver (a BaseException, like KeyboardInterrupt, so that `except Exception` in a
handler does not swallow it) is raised by `ctx.hand_over()` to end the attempt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence


class BrainsJobsError(Exception):
    """Base class of every error brains-jobs raises."""


class ConfigurationError(BrainsJobsError):
    """An option, URL or environment variable has a value that cannot work."""


class PluginError(BrainsJobsError):
    """A plugin failed to import or register, or two plugins registered the same name."""


class UnknownJobType(BrainsJobsError):
    """No registered job definition has the requested name."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.known = sorted(known)
        listing = ", ".join(repr(k) for k in self.known) or "none"
        super().__init__(f"unknown job type {name!r}; known types: {listing}")


class InvalidJobInput(BrainsJobsError):
    """The input of a job failed validation against its input model."""

    def __init__(self, job_type: str, errors: Sequence[Mapping[str, Any]]) -> None:
        self.job_type = job_type
        self.errors = list(errors)
        parts = []
        for err in errors:
            where = ".".join(str(p) for p in err.get("loc", ())) or "(input)"
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        super().__init__(f"invalid input for job type {job_type!r}: " + "; ".join(parts))

    @property
    def fields(self) -> list[str]:
        """The dotted paths of the fields that failed."""
        return [".".join(str(p) for p in err.get("loc", ())) for err in self.errors]


class InvalidJobOutput(BrainsJobsError):
    """An output given for a job (`Runtime.complete`, `force_complete`) failed
    validation against its type's output model.
    """

    def __init__(self, job_type: str, errors: Sequence[Mapping[str, Any]]) -> None:
        self.job_type = job_type
        self.errors = list(errors)
        parts = []
        for err in errors:
            where = ".".join(str(p) for p in err.get("loc", ())) or "(output)"
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        super().__init__(f"invalid output for job type {job_type!r}: " + "; ".join(parts))

    @property
    def fields(self) -> list[str]:
        """The dotted paths of the fields that failed."""
        return [".".join(str(p) for p in err.get("loc", ())) for err in self.errors]


class InvalidJobOption(BrainsJobsError):
    """An option given to enqueue (or a job action) has a value that cannot work."""

    def __init__(self, option: str, problem: str) -> None:
        self.option = option
        self.problem = problem
        super().__init__(f"invalid option {option!r}: {problem}")


class PayloadTooLarge(BrainsJobsError):
    """A job's serialized input or output is larger than the configured limit."""


class DuplicateJob(BrainsJobsError):
    """A job with the same unique key is waiting, queued or running (`on_conflict="reject"`)."""

    def __init__(self, key: str, job_id: int) -> None:
        self.key = key
        self.job_id = job_id
        super().__init__(f"unique key {key!r} is held by job {job_id}")


class JobNotFound(BrainsJobsError):
    """No job has the requested id."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        super().__init__(f"no job with id {job_id}")


class TemplateNotFound(BrainsJobsError):
    """No job template has the requested name."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"no job template named {name!r}")


class InvalidJobState(BrainsJobsError):
    """The requested action does not apply to the job in its current status."""


class JobError(BrainsJobsError):
    """A job did not produce a result."""

    def __init__(self, job_id: int, message: str) -> None:
        self.job_id = job_id
        super().__init__(message)


class JobFailed(JobError):
    """Every attempt of the job failed; `error` is the last attempt's error."""

    def __init__(self, job_id: int, error: str | None, attempts: int) -> None:
        self.error = error
        self.attempts = attempts
        super().__init__(job_id, f"job {job_id} failed after {attempts} attempt(s): {error}")


class JobCancelled(JobError):
    """The job was cancelled before it produced a result."""

    def __init__(self, job_id: int) -> None:
        super().__init__(job_id, f"job {job_id} was cancelled")


class LeaseLost(BrainsJobsError):
    """A worker could not renew a job's lease in time and stopped its handler."""


class StoreError(BrainsJobsError):
    """The job store's database failed; the driver's error is the cause."""


class PermanentError(BrainsJobsError):
    """Raised by a handler for an error that retrying cannot fix: the job fails at once."""


class Throttled(BrainsJobsError):
    """Raised by a handler that was told to slow down (an HTTP 429, say): the job runs
    again after `retry_after` seconds without using an attempt, and its limit keys (or
    only `key`) are held for that long for every worker.
    """

    def __init__(self, retry_after: float, *, key: str | None = None) -> None:
        if not retry_after >= 0:
            raise ValueError(f"retry_after must be a number of seconds, got {retry_after!r}")
        self.retry_after = float(retry_after)
        self.key = key
        super().__init__(f"throttled: try again in {self.retry_after:g}s")


class HandedOver(BaseException):
    """Raised by `ctx.hand_over()`: the job stays `running` as a tracking job, completed
    from outside (`Runtime.complete`, `fail`), reporting within `ttl` seconds. Not an
    `Exception`, so that a handler's `except Exception` lets it through.
    """

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        super().__init__(f"handed over to outside completion (report within {ttl:g}s)")
