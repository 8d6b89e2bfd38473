"""Records that cross the library's edges: jobs, events, statistics."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class JobStatus(enum.StrEnum):
    """Where a job is in its life. `succeeded`, `failed` and `cancelled` are final."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        """True when the job will not run again unless retried by hand."""
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})


class EventKind(enum.StrEnum):
    """What a `JobEvent` reports."""

    STATUS = "status"  # the job's status changed (the audit trail)
    PROGRESS = "progress"  # the handler reported progress
    LOG = "log"  # the handler's logger wrote a line
    DROPPED = "dropped"  # this subscriber fell behind and missed events


class AttemptError(BaseModel):
    """The error of one failed attempt."""

    model_config = ConfigDict(frozen=True)

    attempt: int
    type: str
    message: str
    traceback: str | None = None
    at: datetime


class Job(BaseModel):
    """A job as stored: what it is, where it is, and what happened to it."""

    model_config = ConfigDict(frozen=True)

    id: int
    type: str
    queue: str
    priority: int
    status: JobStatus
    input: Any
    output: Any = None
    attempts: int
    max_attempts: int
    errors: list[AttemptError] = Field(default_factory=list)
    progress: float | None = None
    progress_message: str | None = None
    unique_key: str | None = None
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    owner: str | None = None
    parent_id: int | None = None
    worker_id: str | None = None
    cancel_requested: bool = False
    created_at: datetime
    run_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    updated_at: datetime

    @property
    def last_error(self) -> AttemptError | None:
        """The error of the latest failed attempt, if any."""
        return self.errors[-1] if self.errors else None


class JobEvent(BaseModel):
    """One entry of a job's history: a status change, a progress report or a log line.

    `seq` orders all events of a store; a subscriber resumes after the last `seq` it saw.
    """

    model_config = ConfigDict(frozen=True)

    seq: int
    job_id: int
    job_type: str
    kind: EventKind
    status: JobStatus | None = None
    attempt: int = 0
    progress: float | None = None
    message: str | None = None
    data: dict[str, Any] | None = None
    at: datetime


class JobPage(BaseModel):
    """One page of `Runtime.list()`; pass `next_cursor` back to get the next page."""

    jobs: list[Job]
    next_cursor: str | None = None


class Stats(BaseModel):
    """Job counts by type and status."""

    by_type: dict[str, dict[JobStatus, int]]

    @property
    def by_status(self) -> dict[JobStatus, int]:
        """Counts by status over every type."""
        total: dict[JobStatus, int] = {}
        for counts in self.by_type.values():
            for status, n in counts.items():
                total[status] = total.get(status, 0) + n
        return total
