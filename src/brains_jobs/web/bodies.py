"""The JSON bodies of the HTTP API: what requests send and what responses hold, beside
the library's own records (`Job`, `JobEvent`, `Attempt`, `Stats`...), which responses
use as they are.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from ..bulk import MAX_BULK
from ..models import Attempt, Job, JobEvent, JobStatus, WorkerInfo
from .dependencies import MAX_ID

Id = Annotated[int, Field(ge=1, le=MAX_ID)]

_STRICT = ConfigDict(extra="forbid")


class EnqueueBody(BaseModel):
    """`POST /api/jobs`: a job type, its input (validated against the type's input
    model) and enqueue options. With `track_ttl`, a tracking job is created instead:
    running at once, reported on and ended from outside (`/report`, `/complete`,
    `/fail`), lost when no report comes within `track_ttl` seconds.
    """

    model_config = _STRICT

    type: str = Field(description="a registered job type (see GET /api/types)")
    input: dict[str, Any] = Field(default_factory=dict)
    queue: str | None = None
    priority: int | None = None
    delay: float | None = Field(None, ge=0, le=10 * 365 * 86400, description="seconds")
    run_at: AwareDatetime | None = None
    unique_key: str | None = None
    on_conflict: Literal["return_existing", "reject", "replace"] | None = None
    unique_until: Literal["finished", "pruned"] | None = None
    tags: list[str] | None = None
    metadata: dict[str, Any] | None = None
    depends_on: list[Id] | None = None
    on_parent_failure: Literal["skip", "run"] | None = None
    max_attempts: int | None = None
    track_ttl: float | None = Field(None, gt=0, le=30 * 86400, description="seconds")

    def options(self) -> dict[str, Any]:
        """The enqueue options that were given."""
        names = (
            "queue",
            "priority",
            "delay",
            "run_at",
            "unique_key",
            "on_conflict",
            "unique_until",
            "tags",
            "metadata",
            "on_parent_failure",
            "max_attempts",
        )
        found = {name: getattr(self, name) for name in names}
        if self.depends_on is not None:
            found["depends_on"] = tuple(self.depends_on)
        return {k: v for k, v in found.items() if v is not None}


class JobDetail(Job):
    """A job with every attempt it made (start, end, worker, outcome, error)."""

    attempt_history: list[Attempt] = Field(default_factory=list)


class EventPage(BaseModel):
    """A page of a job's events, oldest first; ask again with `after=next_after`."""

    events: list[JobEvent]
    next_after: int | None = None


class CompleteBody(BaseModel):
    """`POST /api/jobs/{id}/complete`: the output (checked against the type's output
    model) and, for a tracking job, usage to add.
    """

    model_config = _STRICT

    output: Any = None
    usage: dict[str, float] | None = None


class FailBody(BaseModel):
    """`POST /api/jobs/{id}/fail`: why it failed and, for a tracking job, usage to add."""

    model_config = _STRICT

    reason: str = Field(min_length=1, max_length=10_000)
    usage: dict[str, float] | None = None


class ReportBody(BaseModel):
    """`POST /api/jobs/{id}/report`: progress of a tracking job (0.0 to 1.0), a message,
    usage to add; each report gives the job its ttl again.
    """

    model_config = _STRICT

    progress: float | None = Field(None, ge=0.0, le=1.0)
    message: str | None = Field(None, max_length=10_000)
    usage: dict[str, float] | None = None


class MoveBody(BaseModel):
    """`POST /api/jobs/{id}/move`: another queue, another priority, or both."""

    model_config = _STRICT

    queue: str | None = None
    priority: int | None = None


class CancelResult(BaseModel):
    """What `cancel` did: `cancelled`, or `running` when a running job was asked to
    stop (its worker stops it within a second).
    """

    status: JobStatus
    job: Job


class BulkBody(BaseModel):
    """`POST /api/jobs/bulk/{action}`: the jobs by `ids`, or by a filter with a time
    bound (`created_after`, `created_before`), at most `limit` of them, newest first.
    `dry_run` only reports the matches.
    """

    model_config = _STRICT

    ids: list[Id] | None = Field(None, max_length=10_000)
    status: JobStatus | None = None
    type: str | None = None
    queue: str | None = None
    tag: str | None = None
    owner: str | None = None
    created_after: AwareDatetime | None = None
    created_before: AwareDatetime | None = None
    limit: int = Field(1000, ge=1, le=MAX_BULK)
    dry_run: bool = False


class TypeInfo(BaseModel):
    """A registered job type: its models' JSON Schemas, options and plugin."""

    name: str
    description: str
    plugin: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    queue: str
    priority: int
    max_attempts: int
    timeout: float | None = None
    max_crashes: int
    version: int
    schedule: str | None = None


class QueueInfo(BaseModel):
    """A queue: the job types that go to it by default and the live workers taking it."""

    name: str
    types: list[str]
    workers: list[str]


class ScheduleOut(BaseModel):
    """A recurring job: its timing in words, its job and options, next and last run."""

    name: str
    job_type: str
    schedule: str
    missed: str
    queue: str
    priority: int
    max_attempts: int
    input: Any
    tags: list[str]
    metadata: dict[str, Any]
    owner: str | None = None
    source: str
    paused: bool
    next_run_at: datetime | None = None
    last_run_at: datetime | None = None
    last_job_id: int | None = None
    created_at: datetime
    updated_at: datetime


class PluginOut(BaseModel):
    """A loaded plugin and the job types it registered."""

    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    job_types: list[str]


class PluginFailureOut(BaseModel):
    """A plugin that could not be loaded, and why."""

    name: str
    distribution: str | None = None
    error: str


class PluginsOut(BaseModel):
    """The loaded plugins, and those that failed to load."""

    plugins: list[PluginOut]
    failures: list[PluginFailureOut]


class WorkerRun(BaseModel):
    """What a burst worker run by `POST /api/worker/run` did."""

    worker_id: str
    processed: int
    seconds: float


class WorkersOut(BaseModel):
    """The live workers."""

    workers: list[WorkerInfo]
