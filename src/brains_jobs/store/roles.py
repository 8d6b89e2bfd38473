"""The store interface, split by the roles a store plays.

Each role is an ABC with what it must guarantee written on its methods; `Store` is all
of them together, which is what a backend implements. The worker uses `WorkQueue`, the
maintenance services `Maintenance`, the runtime `Producer` and `Admin`, the event bus
`EventLog`. SQLAlchemy appears once: a host application may pass its own open
connection to `Producer.enqueue`, so that jobs commit (or not) with its transaction.

Rules are decided in Python, above the store: which status an attempt ends in, how long
a retry waits, what a rescue does, who may cancel what. The store applies decisions
(`Outcome`, `Change`) in batches, atomically, fenced by status and lease token, and
writes the audit trail as `brains_jobs.store.audit` describes.
"""

from __future__ import annotations

import abc
import os
from typing import TYPE_CHECKING

from .._signal import Signal
from ..exceptions import StoreError
from ..models import (
    Job,
    JobEvent,
    JobPage,
    JobStatus,
    LimitInfo,
    Stats,
    TemplateInfo,
    WorkerInfo,
)
from .records import ClaimRequest
from .schedules import Schedules
from .snapshots import Snapshots

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime
    from typing import Any

    from sqlalchemy.ext.asyncio import AsyncConnection

    from ..limits import KeySettings
    from .records import (
        Change,
        ClaimedJob,
        Enqueued,
        ExpiredJob,
        JobFilter,
        NewEvent,
        NewJob,
        Outcome,
    )


class Lifecycle(abc.ABC):
    """Connecting, migrating, and naming the database."""

    @abc.abstractmethod
    async def open(self, *, create_schema: bool = True) -> None:
        """Connect, and apply pending migrations unless `create_schema` is False.

        Unreachable databases raise `StoreError`; an unusable URL `ConfigurationError`.
        """

    @abc.abstractmethod
    async def close(self) -> None:
        """Release every connection (and flush pending notifications first)."""

    @abc.abstractmethod
    async def migrate(self) -> list[str]:
        """Apply pending migrations (safe when many processes start at once); return the
        names of those applied.
        """

    @abc.abstractmethod
    def migration_sql(self) -> str:
        """The SQL of every migration, for a DBA to review or apply by hand."""

    @abc.abstractmethod
    async def pending_migrations(self) -> list[str]:
        """The migrations not applied yet (empty: the schema is current)."""

    @abc.abstractmethod
    def describe(self) -> str:
        """The database in words, for logs and `health`: no password."""


class Producer(abc.ABC):
    """Inserting jobs."""

    @abc.abstractmethod
    async def enqueue(
        self, jobs: Sequence[NewJob], *, connection: AsyncConnection | None = None
    ) -> list[Enqueued]:
        """Insert `jobs` in one transaction (or in `connection`'s open transaction).

        A job whose `unique_key` is already held by another job (of any status, until it
        is pruned) is not inserted: its `Enqueued` carries the existing job's id and
        `created=False`. Each inserted job gets a `queued` status event.

        `jobs` may be a `NewJobBatch` (jobs that differ only in their input): read as a
        sequence it gives its `NewJob`s; while it is `unread`, a store may insert it
        from its template and inputs alone.
        """

    @abc.abstractmethod
    async def reserve_ids(self, count: int) -> list[int]:
        """`count` job ids that no job has or will be given by an insert without one
        (for follow-up jobs that are inserted later with their attempt's success).
        """


class WorkQueue(abc.ABC):
    """What a worker does with jobs: claim, renew, finish, release. Every method takes
    a whole batch and is one transaction.
    """

    async def claim(
        self,
        *,
        worker_id: str,
        queues: Sequence[str] | None,
        types: Sequence[str],
        limit: int,
        lease: float,
        isolated: bool = False,
        limited: bool = False,
    ) -> list[ClaimedJob]:
        """Lease up to `limit` ready jobs of `types` (in `queues`, if given), best first
        (priority, then run time, then id), counting an attempt for each; every job of
        one claim gets the same new lease token (see `claim_batch`). With `limited`,
        jobs of limited types, within their limits.
        """
        if limit <= 0:
            return []
        request = ClaimRequest(
            worker_id=worker_id,
            types=tuple(types),
            queues=None if queues is None else tuple(queues),
            limit=limit,
            lease=float(lease),
            token=os.urandom(16).hex(),  # a sixth of uuid4()'s cost, as random
            isolated=isolated,
            limited=limited,
        )
        return await self.claim_batch(request)

    @abc.abstractmethod
    async def claim_batch(self, request: ClaimRequest) -> list[ClaimedJob]:
        """Lease up to `request.limit` ready jobs (status queued, run time come, of the
        request's types and queues) in one statement, best first (priority, then run
        time, then id), counting an attempt for each: status `running`, the request's
        token and worker, a lease until now plus `request.lease`, the start not marked.

        Jobs that crashed a worker before (`crashes > 0`) run alone: they are claimed
        only with `request.isolated`, and others only without it. Jobs of limited types
        are claimed only with `request.limited` (isolated ones too), within their keys'
        limits at once, as `brains_jobs.store.limits` decides. Two claims at once never
        lease the same job, and never both take a key's last place.
        """

    @abc.abstractmethod
    async def mark_started(self, leases: Sequence[tuple[int, str]]) -> set[int]:
        """Record that the handlers of these leased jobs started; return the ids whose
        lease is no longer held.
        """

    @abc.abstractmethod
    async def finish(
        self, outcomes: Sequence[Outcome], events: Sequence[NewEvent] = ()
    ) -> list[int]:
        """Write `events`, then `outcomes`, in one transaction.

        An outcome whose lease token no longer matches (the lease expired and the job
        moved on) is rejected and recorded as a log event; its id is returned. The
        follow-up jobs (`spawned`) of the successes that were written are inserted in
        the same transaction (with their reserved ids; one whose unique key is taken is
        skipped). A job whose cancel was requested, and whose attempt did not succeed,
        ends `cancelled` whatever the outcome said.
        """

    @abc.abstractmethod
    async def heartbeat(
        self, leases: Sequence[tuple[int, str]], lease: float, *, started: Sequence[int] = ()
    ) -> tuple[set[int], set[int]]:
        """Extend `leases` (job id, token) by `lease` seconds from now, and record that
        the handlers of the `started` ids have started.

        Returns the ids that are lost (no longer held) and those asked to cancel.
        """

    @abc.abstractmethod
    async def callbacks_done(self, ids: Sequence[int]) -> None:
        """Record that the lifecycle callbacks of these finished jobs have run."""

    @abc.abstractmethod
    async def cancel_requested(self, ids: Sequence[int]) -> set[int]:
        """The ids among running `ids` that someone asked to cancel (a cheap read)."""

    @abc.abstractmethod
    async def release(self, leases: Sequence[tuple[int, str]], reason: str) -> None:
        """Give leased jobs back to the queue at once, giving the attempt back (the
        job's allowance grows by one; attempt numbers never repeat). A job whose cancel
        was requested ends `cancelled` instead.
        """

    @abc.abstractmethod
    async def next_ready(
        self, queues: Sequence[str] | None, types: Sequence[str]
    ) -> datetime | None:
        """The earliest `run_at` of a queued job a worker could take (a cheap read)."""


class Admin(abc.ABC):
    """Reading jobs and applying decided changes to them."""

    @abc.abstractmethod
    async def get(self, job_id: int) -> Job | None:
        """The job with `job_id`, or None."""

    @abc.abstractmethod
    async def get_many(self, ids: Sequence[int]) -> list[Job]:
        """The jobs among `ids` that exist, by id."""

    @abc.abstractmethod
    async def list_jobs(self, filters: JobFilter, *, limit: int, cursor: str | None) -> JobPage:
        """Jobs matching `filters`, newest first, one page at a time."""

    @abc.abstractmethod
    async def stats(self) -> Stats:
        """Counts by type and status, usage sums by type and by owner, and run time
        percentiles of the latest `Stats.SAMPLE` succeeded jobs of each type.
        """

    @abc.abstractmethod
    async def pending_count(self) -> int:
        """How many jobs are queued or running."""

    @abc.abstractmethod
    async def set_limit(self, settings: KeySettings) -> None:
        """Set a limit key's settings, for every worker, from its next claim on."""

    @abc.abstractmethod
    async def limits(self) -> list[LimitInfo]:
        """Every limit key with its settings and the jobs running under it."""

    @abc.abstractmethod
    async def holders(self, keys: Sequence[str]) -> dict[str, int]:
        """The jobs holding `keys` (waiting, queued or running, or keeping their key
        until pruned), by key.
        """

    @abc.abstractmethod
    async def oldest_queued(self) -> datetime | None:
        """The creation time of the oldest queued job, None when none is queued."""

    @abc.abstractmethod
    async def apply(self, changes: Sequence[Change]) -> list[int]:
        """Apply `changes` in one transaction: each one only if its job is in one of the
        expected statuses (and holds the lease token, when given). Returns the ids
        applied; the others are left as they are.
        """


class EventLog(abc.ABC):
    """The audit trail, read in one order (`seq`) by every process."""

    @abc.abstractmethod
    async def events_after(
        self, seq: int, *, job_id: int | None = None, limit: int = 1000
    ) -> list[JobEvent]:
        """Events with a sequence number above `seq`, oldest first.

        Never skips an event that a transaction still in flight will commit later with a
        lower sequence number than one returned.
        """

    @abc.abstractmethod
    async def last_seq(self) -> int:
        """The highest event sequence number a reader may move past, 0 when none."""


class Maintenance(abc.ABC):
    """What the background services need: expired leases, pruning, leadership and the
    workers registry.
    """

    @abc.abstractmethod
    async def expired(self, limit: int) -> list[ExpiredJob]:
        """Up to `limit` running jobs whose lease has expired, on the database clock."""

    @abc.abstractmethod
    async def prune(self, older_than: Mapping[JobStatus, float], limit: int) -> list[int]:
        """Delete up to `limit` jobs in each final status of `older_than` that finished
        more than that many seconds ago, with their events; return their ids. Jobs that a
        waiting job depends on are kept.
        """

    @abc.abstractmethod
    async def callbacks_due(self, types: Sequence[str], quiet_for: float, limit: int) -> list[Job]:
        """Take up to `limit` finished jobs of `types` whose lifecycle callback is still
        due, untouched for `quiet_for` seconds (the worker that finished them died
        first): each is left alone by other callers for `quiet_for` seconds more.
        """

    @abc.abstractmethod
    async def sweep_waiting(self, quiet_for: float, limit: int) -> list[JobStatus]:
        """Settle up to `limit` waiting jobs, untouched for `quiet_for` seconds, whose
        count of pending parents disagrees with their parents (see
        `brains_jobs.store.dependencies.sweep`); returns the statuses they took.
        """

    @abc.abstractmethod
    async def lead(self, holder: str, ttl: float) -> bool:
        """Become, or stay, the leader of this database for about `ttl` seconds; True
        while `holder` is the leader. At most one holder is leader at a time, and a
        leader that dies is replaced within `ttl`.
        """

    @abc.abstractmethod
    async def resign(self, holder: str) -> None:
        """Give up leadership if `holder` has it."""

    @abc.abstractmethod
    async def leader(self) -> str | None:
        """The current leader's name, if any."""

    @abc.abstractmethod
    async def register_worker(self, info: WorkerInfo) -> None:
        """Record (or refresh) a worker in the registry."""

    @abc.abstractmethod
    async def beat_worker(self, worker_id: str, running: int) -> bool:
        """Refresh a worker's heartbeat; False when its record was reaped."""

    @abc.abstractmethod
    async def remove_worker(self, worker_id: str) -> None:
        """Remove a worker from the registry (it exits)."""

    @abc.abstractmethod
    async def workers(self) -> list[WorkerInfo]:
        """Every recorded worker, oldest first."""

    @abc.abstractmethod
    async def reap_workers(self, silent_for: float) -> list[str]:
        """Remove workers whose heartbeat is older than `silent_for` seconds."""


class Templates(abc.ABC):
    """Job templates: named presets of a job type, its input defaults and its enqueue
    options. The store keeps them; what they mean is decided above it, at enqueue.
    """

    @abc.abstractmethod
    async def save_template(
        self, name: str, job_type: str, input: str, options: Mapping[str, Any]
    ) -> None:
        """Create the template `name`, or replace the one of that name (its type, input
        and options at once), in one statement: of two saves at once, the last wins.
        `input` is JSON text of an object, kept as it is; `options` a JSON-able
        mapping. A new template's `created_at` and `updated_at` are now; a replaced
        one keeps its `created_at` and its `updated_at` becomes now.
        """

    @abc.abstractmethod
    async def template(self, name: str) -> TemplateInfo | None:
        """The template named `name`, or None."""

    @abc.abstractmethod
    async def templates(self) -> list[TemplateInfo]:
        """Every template, by name."""

    @abc.abstractmethod
    async def delete_template(self, name: str) -> bool:
        """Delete the template `name`; False when there was none."""


class Store(
    Lifecycle, Producer, WorkQueue, Admin, EventLog, Maintenance, Schedules, Templates, Snapshots
):
    """A database of jobs and job events: every role at once.

    `work_signal` is notified when jobs may be ready (always for this process's own
    writes; across processes when the backend can tell), `event_signal` when new events
    may be in the table. Waiters poll every `poll_interval` seconds as a fallback.
    """

    #: Seconds between polls when nothing signals; backends that hear other processes
    #: (LISTEN/NOTIFY) poll rarely, others often.
    poll_interval: float = 0.5

    def __init__(self) -> None:
        self.work_signal = Signal()
        self.event_signal = Signal()
        #: Set by `open()` from the database (see `store_id`).
        self._store_id: str | None = None

    @property
    def store_id(self) -> str:
        """A name unique to this database (and schema), fixed when its schema was made;
        artifacts are kept under it so that databases sharing a folder never collide.
        """
        if self._store_id is None:
            raise StoreError("the store is not open, or its schema was never created")
        return self._store_id

    def written(self, statuses: Sequence[JobStatus] = (), *, events: bool = True) -> None:
        """Wake this process's waiters after a commit: workers when a job became
        `queued`, event readers when events were written. Every store calls this, so
        that which signal follows which write is decided here once.
        """
        if JobStatus.QUEUED in statuses:
            self.work_signal.notify()
        if events:
            self.event_signal.notify()
