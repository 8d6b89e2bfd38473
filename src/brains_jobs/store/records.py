"""The plain records that cross the store's interface, in both directions.

Frozen dataclasses, built by the worker, the maintenance services and the runtime, and
applied by a store. JSON travels as text: the store never parses a job's input or output.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, overload

from ..limits import KeySettings
from ..models import JobStatus


@dataclass(frozen=True, slots=True)
class StoreOptions:
    """What a store factory gets: the URL, the longest a statement may take, and
    whether the database must exist already (read-only uses never create one).
    """

    url: str
    statement_timeout: float = 10.0
    must_exist: bool = False


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
    id: int | None = None  # reserved beforehand (a follow-up job); None: the next id
    #: What a repeat of a held `unique_key` does: `return_existing`, `reject`, `replace`.
    on_conflict: str = "return_existing"
    #: Hold the key until the job is pruned, not only while it is unfinished.
    unique_keep: bool = False
    #: Jobs this one waits for; with any, it is inserted `waiting`.
    depends_on: tuple[int, ...] = ()
    #: What a parent that did not succeed does to this job: `skip` it, or let it `run`.
    on_parent_failure: str = "skip"
    #: Where its input comes from once its parents are final: `parent`, `parents`, or
    #: None (the input given).
    input_from: str | None = None
    #: Its limit keys with their first settings (a job of a limited type).
    limits: tuple[KeySettings, ...] = ()
    #: The version of its type it was enqueued under.
    version: int = 1
    #: The job this one resubmits.
    original_id: int | None = None
    #: A tracking job: inserted `running`, worked on outside any worker, which must
    #: report within this many seconds or it is lost.
    track_ttl: float | None = None
    #: The W3C `traceparent` of the span that enqueued it (only with tracing on).
    trace: str | None = None


class NewJobBatch(Sequence[NewJob]):
    """New jobs that differ only in their input: `template`'s type and options, and one
    job per JSON text of `inputs` (the template's own input is not one of them).

    It reads as the list of its jobs, made the first time anything reads one, and read
    from then on (changes made to them count). Until then (`unread`) a store may insert
    the batch from `template` and `inputs` alone, without a `NewJob` per job.
    """

    __slots__ = ("_jobs", "inputs", "template")

    def __init__(self, template: NewJob, inputs: list[str]) -> None:
        self.template = template
        self.inputs = inputs
        self._jobs: list[NewJob] | None = None

    @property
    def unread(self) -> bool:
        """True while no job of the batch has been made, so none has been changed."""
        return self._jobs is None

    @property
    def jobs(self) -> list[NewJob]:
        if self._jobs is None:
            t = self.template
            head: tuple[Any, ...] = (t.type, t.queue, t.priority)
            tail: tuple[Any, ...] = (
                t.max_attempts, t.run_at, t.unique_key, t.tags, t.metadata, t.owner,
                t.parent_id, t.id, t.on_conflict, t.unique_keep, t.depends_on,
                t.on_parent_failure, t.input_from, t.limits, t.version, t.original_id,
                t.track_ttl, t.trace,
            )  # fmt: skip
            make: Callable[..., NewJob] = NewJob  # positional: its fields in order
            self._jobs = [make(*head, text, *tail) for text in self.inputs]
        return self._jobs

    def __len__(self) -> int:
        return len(self.inputs)

    @overload
    def __getitem__(self, index: int) -> NewJob: ...

    @overload
    def __getitem__(self, index: slice) -> list[NewJob]: ...

    def __getitem__(self, index: int | slice) -> NewJob | list[NewJob]:
        return self.jobs[index]

    def __iter__(self) -> Iterator[NewJob]:
        return iter(self.jobs)

    def __repr__(self) -> str:
        return f"NewJobBatch({self.template.type!r}, {len(self.inputs)} inputs)"


@dataclass(slots=True)  # not frozen: built per job on the enqueue path, 3x cheaper
class Enqueued:
    """The outcome of inserting one `NewJob`: `created` is False for a unique-key repeat
    (then `id` is the job holding the key), and `replaced` True when that job took the
    repeat's input and run time (`on_conflict="replace"`).
    """

    id: int
    created: bool
    replaced: bool = False


@dataclass(frozen=True, slots=True)
class ClaimRequest:
    """What a worker asks of `WorkQueue.claim`: up to `limit` ready jobs of `types` (in
    `queues`, if given), leased for `lease` seconds under `token`.
    """

    worker_id: str
    types: tuple[str, ...]
    queues: tuple[str, ...] | None
    limit: int
    lease: float
    token: str
    isolated: bool = False
    limited: bool = False


@dataclass(slots=True)  # not frozen: built per job on the claim path, 9x cheaper
class ClaimedJob:
    """A job this worker holds a lease on; `input` is JSON text.

    `mark_start` is set when the job was held by a worker that died before anyone knew
    whether its handler had started: the claimer records the start before it runs the
    handler, so that a job which kills its worker at once is recognised the next time.
    """

    id: int
    type: str
    queue: str
    input: str
    attempt: int
    max_attempts: int
    lease_token: str
    mark_start: bool = False
    has_children: bool = False  # jobs wait for it: its outcome resolves them
    version: int = 1  # the version of its type it was enqueued under
    trace: str | None = None  # the `traceparent` it was enqueued under, if any
    waited: float = 0.0  # seconds from its run time to this claim


@dataclass(slots=True)  # not frozen: built per job on the result path, 7x cheaper
class Outcome:
    """How one attempt ended.

    `status` is SUCCEEDED (with `output`, JSON text), FAILED or CANCELLED (final),
    QUEUED to retry after `retry_in` seconds, or RUNNING when the handler handed the job
    over to outside completion (`hand_over`). `error` is the attempt's error as a dict
    (`type`, `message`, `traceback`, `attempt`, `at`).
    """

    job_id: int
    lease_token: str
    status: JobStatus
    output: str | None = None
    error: dict[str, Any] | None = None
    retry_in: float = 0.0
    message: str | None = None
    attempt: int = 0
    #: Follow-up jobs the attempt enqueued (ids reserved): inserted only with a success.
    spawned: tuple[NewJob, ...] = ()
    #: Jobs wait for this one (from its claim): resolve them with the outcome.
    has_children: bool = False
    #: Give the attempt back (its allowance grows by one): a throttled attempt.
    give_back: bool = False
    #: Hold the job's limit keys (or only `throttle_key`) this many seconds.
    throttle: float | None = None
    throttle_key: str | None = None
    #: Amounts the attempt used (`ctx.usage`), JSON text of numbers: added to the job's.
    usage: str | None = None
    #: A lifecycle callback runs for this outcome: the job is flagged until it has run.
    callback: bool = False
    #: The input upgraded to the type's `version` when it was claimed (JSON text).
    input: str | None = None
    version: int | None = None
    #: With status RUNNING: the job was handed over to outside completion, and must be
    #: reported on within this many seconds.
    hand_over: float | None = None


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
    """Filters of `Store.list_jobs()`; None means any."""

    status: JobStatus | None = None
    type: str | None = None
    queue: str | None = None
    tag: str | None = None
    owner: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """One decided change of a job, applied by `Store.apply()` only if the job is still
    in one of the `expect`ed statuses (and, with `lease_token`, still holds that lease).

    The decision (which status, which delay, which error) is made in Python by the
    runtime or a maintenance service; the store applies it as it is. Fields left at
    their defaults leave the column as it is. A change of status writes one `status`
    event (see `brains_jobs.store.audit`).
    """

    job_id: int
    expect: frozenset[JobStatus]
    status: JobStatus
    lease_token: str | None = None
    message: str | None = None
    actor: str | None = None
    error: dict[str, Any] | None = None  # appended to the job's errors
    run_in: float | None = None  # queued again: may run after this many seconds
    output: str | None = None  # JSON text, with status SUCCEEDED
    attempts_delta: int = 0  # -1 gives back an attempt that never ran its handler
    max_attempts: int | None = None
    crashes_delta: int = 0
    mark_start: bool | None = None
    request_cancel: bool | None = None
    queue: str | None = None
    priority: int | None = None
    input: str | None = None  # JSON text: the job's new input (an upgrade)
    version: int | None = None
    progress: float | None = None  # with `message`, the job's current progress
    #: A running job's lease (a tracking job: its time to report) runs this many more
    #: seconds from now.
    lease_for: float | None = None
    #: The job becomes a tracking job that must report every `track_ttl` seconds.
    track_ttl: float | None = None
    usage: str | None = None  # JSON text of numbers, added to the job's usage
    #: A running job's lease token becomes this one (a tracking job's report, so that
    #: a rescue decided before it no longer applies).
    new_token: str | None = None
    #: A lifecycle callback is due for the new status: flag the job until it has run.
    callback: bool = False

    def __post_init__(self) -> None:
        # A change either keeps a job's status or moves it out of the expected ones:
        # whether it writes a `status` or an `action` event is then known beforehand.
        if self.status in self.expect and len(self.expect) > 1:
            raise ValueError(
                f"a change to {self.status.value} that keeps the status must expect only"
                f" {self.status.value}, not {sorted(s.value for s in self.expect)}"
            )


@dataclass(frozen=True, slots=True)
class ExpiredJob:
    """A running job whose lease has expired, as the rescuer sees it.

    `started` tells whether its handler is known to have started (the worker recorded
    it), as opposed to a job that was claimed and waited in the dead worker's buffer.
    """

    id: int
    type: str
    lease_token: str
    attempts: int
    max_attempts: int
    crashes: int
    started: bool
    cancel_requested: bool
    worker_id: str | None
    tracked: bool = False  # a tracking job whose reporter fell silent
    queue: str = ""
