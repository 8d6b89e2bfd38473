"""The store interface every database backend implements.

The worker and the runtime talk to the database only through `Store`. Every method that
writes takes a whole batch, so that a backend can do one statement (or one transaction)
per batch instead of one per job.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .._signal import Signal
from ..models import Job, JobEvent, JobPage, JobStatus, Stats

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(slots=True)  # not frozen: built per job on the bulk enqueue path, 4x cheaper
class NewJob:
    """A validated job about to be inserted; `input` is JSON text."""

    type: str
    queue: str
    priority: int
    input: str
    max_attempts: int
    run_at: datetime | None = None  # None: now, on the database's clock
    unique_key: str | None = None
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    owner: str | None = None
    parent_id: int | None = None


@dataclass(frozen=True, slots=True)
class Enqueued:
    """The outcome of inserting one `NewJob`: `created` is False for a unique-key repeat."""

    id: int
    created: bool


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """A job this worker holds a lease on; `input` is JSON text."""

    id: int
    type: str
    queue: str
    input: str
    attempt: int
    max_attempts: int
    lease_token: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one attempt ended.

    `status` is SUCCEEDED (with `output`, JSON text), FAILED or CANCELLED (final), or
    QUEUED to retry after `retry_in` seconds. `error` is the attempt's error as a dict
    (`type`, `message`, `traceback`, `attempt`, `at`).
    """

    job_id: int
    lease_token: str
    status: JobStatus
    output: str | None = None
    error: dict[str, Any] | None = None
    retry_in: float = 0.0
    message: str | None = None


@dataclass(frozen=True, slots=True)
class NewEvent:
    """A progress report or log line written by a handler."""

    job_id: int
    job_type: str
    kind: str
    attempt: int
    progress: float | None = None
    message: str | None = None
    data: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Filters of `Store.list()`; None means any."""

    status: JobStatus | None = None
    type: str | None = None
    queue: str | None = None
    tag: str | None = None
    owner: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


class Store(abc.ABC):
    """A database of jobs and job events.

    `work_signal` is notified when jobs may be ready (always for this process's own
    enqueues; across processes when the backend can tell), `event_signal` when new
    events may be in the table. Waiters poll as a fallback.
    """

    #: Seconds between polls when nothing signals; backends that hear other processes
    #: (LISTEN/NOTIFY) poll rarely, others often.
    poll_interval: float = 0.5

    def __init__(self) -> None:
        self.work_signal = Signal()
        self.event_signal = Signal()

    # -- lifetime ---------------------------------------------------------------------

    @abc.abstractmethod
    async def open(self, *, create_schema: bool = True) -> None:
        """Connect, and apply pending migrations unless `create_schema` is False."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release every connection."""

    @abc.abstractmethod
    async def migrate(self) -> list[str]:
        """Apply pending migrations; return the names of those applied."""

    @abc.abstractmethod
    def migration_sql(self) -> str:
        """The SQL of every migration, for a DBA to review or apply by hand."""

    # -- producers --------------------------------------------------------------------

    @abc.abstractmethod
    async def enqueue(
        self, jobs: Sequence[NewJob], *, connection: AsyncConnection | None = None
    ) -> list[Enqueued]:
        """Insert `jobs` in one transaction (or in `connection`'s open transaction).

        A job whose `unique_key` is already held by another job (of any status, until it
        is pruned) is not inserted: its `Enqueued` carries the existing job's id and
        `created=False`.
        """

    # -- workers ----------------------------------------------------------------------

    @abc.abstractmethod
    async def claim(
        self,
        *,
        worker_id: str,
        queues: Sequence[str] | None,
        types: Sequence[str],
        limit: int,
        lease: float,
    ) -> list[ClaimedJob]:
        """Lease up to `limit` ready jobs of `types` (in `queues`, if given), best first."""

    @abc.abstractmethod
    async def finish(
        self, outcomes: Sequence[Outcome], events: Sequence[NewEvent] = ()
    ) -> list[int]:
        """Write `events`, then `outcomes`, in one transaction.

        An outcome whose lease token no longer matches (the lease expired and the job
        moved on) is rejected and recorded as a log event; its id is returned.
        """

    @abc.abstractmethod
    async def heartbeat(
        self, leases: Sequence[tuple[int, str]], lease: float
    ) -> tuple[set[int], set[int]]:
        """Extend `leases` (job id, token) by `lease` seconds.

        Returns the ids that are lost (no longer held) and those asked to cancel.
        """

    @abc.abstractmethod
    async def cancel_requested(self, ids: Sequence[int]) -> set[int]:
        """The ids among running `ids` that someone asked to cancel (a cheap read)."""

    @abc.abstractmethod
    async def release(self, leases: Sequence[tuple[int, str]], reason: str) -> None:
        """Give leased jobs back to the queue without counting the attempt."""

    @abc.abstractmethod
    async def rescue_expired(self) -> list[int]:
        """Re-queue (or fail, when out of attempts) running jobs whose lease expired."""

    @abc.abstractmethod
    async def next_ready(
        self, queues: Sequence[str] | None, types: Sequence[str]
    ) -> datetime | None:
        """The earliest `run_at` of a queued job a worker could take (a cheap read)."""

    # -- inspection and administration ------------------------------------------------

    @abc.abstractmethod
    async def get(self, job_id: int) -> Job | None:
        """The job with `job_id`, or None."""

    @abc.abstractmethod
    async def list_jobs(self, filters: JobFilter, *, limit: int, cursor: str | None) -> JobPage:
        """Jobs matching `filters`, newest first, one page at a time."""

    @abc.abstractmethod
    async def stats(self) -> Stats:
        """Counts by type and status."""

    @abc.abstractmethod
    async def pending_count(self) -> int:
        """How many jobs are queued or running."""

    @abc.abstractmethod
    async def cancel(self, job_id: int) -> JobStatus:
        """Cancel a queued job, or ask the worker of a running one to cancel it.

        Returns the status after the call: CANCELLED, or RUNNING when a request was made.
        """

    @abc.abstractmethod
    async def retry(self, job_id: int, extra_attempts: int) -> None:
        """Queue a failed or cancelled job again with `extra_attempts` more attempts."""

    @abc.abstractmethod
    async def prune(self, finished_before: datetime, statuses: Sequence[JobStatus]) -> list[int]:
        """Delete jobs in final `statuses` that finished before `finished_before`, with
        their events; return their ids.
        """

    @abc.abstractmethod
    async def events_after(
        self, seq: int, *, job_id: int | None = None, limit: int = 1000
    ) -> list[JobEvent]:
        """Events with a sequence number above `seq`, oldest first."""

    @abc.abstractmethod
    async def last_seq(self) -> int:
        """The highest event sequence number, 0 when there are none."""
