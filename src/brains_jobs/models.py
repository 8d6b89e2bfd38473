"""Records that cross the library's edges: jobs, events, statistics."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field


class JobStatus(enum.StrEnum):
    """Where a job is in its life. `succeeded`, `failed`, `cancelled` and `skipped` are
    final; a `waiting` job waits for the jobs it depends on.
    """

    WAITING = "waiting"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"

    @property
    def is_final(self) -> bool:
        """True when the job will not run again unless retried by hand."""
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset(
    {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.SKIPPED}
)


class EventKind(enum.StrEnum):
    """What a `JobEvent` reports."""

    STATUS = "status"  # the job's status changed (the audit trail)
    PROGRESS = "progress"  # the handler reported progress
    LOG = "log"  # the handler's logger wrote a line
    ACTION = "action"  # someone acted on the job without changing its status
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
    unique_until: str = "finished"  # or "pruned": how long the key is held
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    owner: str | None = None
    parent_id: int | None = None
    original_id: int | None = None  # the job this one resubmits
    input_from: str | None = None  # a workflow step: `parent` or `parents` give its input
    worker_id: str | None = None
    cancel_requested: bool = False
    crashes: int = 0
    version: int = 1  # the version of its type it was enqueued under (or upgraded to)
    tracked: bool = False  # worked on outside any worker, reporting within `track_ttl`
    track_ttl: float | None = None
    usage: dict[str, float] = Field(default_factory=dict)
    created_at: datetime
    run_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    updated_at: datetime

    @property
    def last_error(self) -> AttemptError | None:
        """The error of the latest failed attempt, if any."""
        return self.errors[-1] if self.errors else None


class Attempt(BaseModel):
    """One attempt of a job, from its audit trail: when it started and ended, on which
    worker, how it ended (`status`: the status it left the job in, None while it runs)
    and its error, if it failed.
    """

    model_config = ConfigDict(frozen=True)

    number: int
    worker_id: str | None = None
    started_at: datetime
    ended_at: datetime | None = None
    status: JobStatus | None = None
    message: str | None = None
    error: AttemptError | None = None

    @property
    def duration(self) -> float | None:
        """Seconds from start to end, None while it runs."""
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


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
    actor: str | None = None  # who acted, for actions taken by a person or a service
    at: datetime


class JobPage(BaseModel):
    """One page of `Runtime.list()`; pass `next_cursor` back to get the next page."""

    jobs: list[Job]
    next_cursor: str | None = None


class Durations(BaseModel):
    """How long the succeeded jobs of a type ran (their last attempt), in seconds."""

    model_config = ConfigDict(frozen=True)

    count: int
    p50: float
    p95: float
    p99: float
    max: float


class Stats(BaseModel):
    """Job counts by type and status; `unserved` lists the types of queued jobs that no
    live worker knows (those jobs wait until a worker that knows them starts).

    `usage` sums what handlers reported with `ctx.usage()` by type, `usage_by_owner` by
    owner (jobs without one under ""), and `durations` gives run time percentiles of the
    succeeded jobs of each type (the latest `Stats.SAMPLE` of them).
    """

    SAMPLE: ClassVar[int] = 10_000

    by_type: dict[str, dict[JobStatus, int]]
    unserved: list[str] = Field(default_factory=list)
    usage: dict[str, dict[str, float]] = Field(default_factory=dict)
    usage_by_owner: dict[str, dict[str, float]] = Field(default_factory=dict)
    durations: dict[str, Durations] = Field(default_factory=dict)

    @property
    def by_status(self) -> dict[JobStatus, int]:
        """Counts by status over every type."""
        total: dict[JobStatus, int] = {}
        for counts in self.by_type.values():
            for status, n in counts.items():
                total[status] = total.get(status, 0) + n
        return total


class WorkerInfo(BaseModel):
    """A worker process as the workers registry records it."""

    model_config = ConfigDict(frozen=True)

    id: str
    host: str
    pid: int
    queues: list[str] = Field(default_factory=list)  # empty: every queue
    types: list[str] = Field(default_factory=list)
    concurrency: int
    started_at: datetime
    heartbeat_at: datetime
    running: int = 0
    version: str | None = None


class LimitInfo(BaseModel):
    """A limit key: its settings (None: no such limit) and its state now."""

    model_config = ConfigDict(frozen=True)

    key: str
    concurrency: int | None = None
    rate: int | None = None
    per: float | None = None
    burst: int = 1
    running: int = 0
    blocked_until: datetime | None = None


class Health(BaseModel):
    """What `Runtime.health()` found: `ok` is True when the database answers and its
    schema is current; `problems` says what is wrong otherwise.
    """

    ok: bool
    problems: list[str] = Field(default_factory=list)
    database: str
    schema_current: bool = False
    workers: list[WorkerInfo] = Field(default_factory=list)
    leader: str | None = None
    oldest_queued_at: datetime | None = None


class TemplateInfo(BaseModel):
    """A job template: a named preset of a job type, with input defaults (top-level
    fields, completed or overridden at enqueue) and enqueue options (`queue`,
    `priority`, `tags`...), kept in the database.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    type: str
    input: dict[str, Any] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    updated_at: datetime
