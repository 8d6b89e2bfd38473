"""The result writer: buffers what a worker's jobs produced and writes it in batches.

Outcomes, progress reports and log lines go into a buffer that one writer flushes in a
single store call per batch, so the database sees one transaction per batch, never one
per job. A batch the store refuses is split in halves until the row that fails is alone;
that row is then written as the error it caused (its job fails with `StoreRejected`), so
one bad row never blocks the others. The leases of jobs whose results are not written
yet keep being renewed (`pending_leases`). Outcomes are counted for the metrics
(`brains_jobs.metrics`) once written, by their job's type and queue. At shutdown,
writing stops after `flush_timeout`: whatever is left is released to the queue (or, if
even that fails, left to the lease rescue), and logged.
"""

from __future__ import annotations

import logging
import time
import traceback
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel

from .._signal import Signal
from ..exceptions import StoreError
from ..metrics import COUNTS
from ..models import JobStatus
from ..store.records import Change, NewEvent, Outcome

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..store.roles import Store

logger = logging.getLogger("brains_jobs.worker")

FLUSH_BATCH = 500  # results written at once at most
FLUSH_DELAY = 0.002  # seconds a result may wait for others (still running) to share its batch


class ResultWriter:
    """Writes a worker's outcomes, events and releases (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        worker_id: str,
        written: Callable[[list[Outcome]], None] | None = None,
        running: Callable[[], bool] = lambda: True,
    ) -> None:
        self.store = store
        self.worker_id = worker_id
        #: Told the outcomes due a lifecycle callback once they are written.
        self.written = written
        #: Whether other jobs still run, whose results may share the next batch: while
        #: none do, waiting for them would only delay what is buffered.
        self.running = running
        self._outcomes: list[Outcome] = []
        self._events: list[NewEvent] = []
        self._releases: list[tuple[int, str]] = []
        self._labels: dict[int, tuple[str, str]] = {}  # job id -> (type, queue)
        self._wanted = Signal()
        self._urgent = False
        #: Notified after each batch is written; `flushes` counts them.
        self.flushed = Signal()
        self.flushes = 0
        self._lock = anyio.Lock()
        #: Rejected late outcomes, for tests and logs.
        self.rejected = 0

    # -- buffering --------------------------------------------------------------------

    def report(self, event: NewEvent) -> None:
        """Buffer a progress report or log line."""
        self._events.append(event)
        self._wanted.notify()

    def add(
        self, outcome: Outcome, urgent: bool = False, labels: tuple[str, str] | None = None
    ) -> None:
        """Buffer an attempt's outcome; an `urgent` one (it frees a limit key that other
        jobs wait for) is written without waiting for others to share its transaction.
        With `labels` (the job's type and queue), it is counted once written.
        """
        self._urgent = self._urgent or urgent
        self._outcomes.append(outcome)
        if labels is not None:
            self._labels[outcome.job_id] = labels
        self._wanted.notify()

    def release(self, job_id: int, lease_token: str) -> None:
        """Buffer giving a leased job back to the queue (and its attempt back)."""
        self._releases.append((job_id, lease_token))
        self._wanted.notify()

    def pending_leases(self) -> list[tuple[int, str]]:
        """Leases of jobs whose outcome is not written yet: still ours to renew."""
        return [(o.job_id, o.lease_token) for o in self._outcomes]

    @property
    def backlog(self) -> int:
        """Outcomes buffered, not written yet."""
        return len(self._outcomes)

    @property
    def idle(self) -> bool:
        """True when nothing waits to be written."""
        return not (self._outcomes or self._events or self._releases)

    # -- writing ----------------------------------------------------------------------

    async def run(self) -> None:
        """Flush whenever something was buffered, until cancelled."""
        while True:
            if self.idle:
                await self._wanted.wait()
            if self._urgent or not self.running():
                await anyio.lowlevel.checkpoint()  # the outcomes of this very moment
            elif len(self._outcomes) < FLUSH_BATCH:
                await anyio.sleep(FLUSH_DELAY)
            self._urgent = False
            await self.flush()

    async def flush(self, *, deadline: float | None = None) -> bool:
        """Write everything buffered; True when all of it was written.

        Retries with backoff while the store fails; with `deadline` (a monotonic time),
        gives up then and returns False, leaving the rest buffered. One flush at a time;
        each write is shielded, so a batch taken from the buffers is always written (or
        put back), even while the worker is being cancelled.
        """
        async with self._lock:
            delay = 0.05
            while not self.idle:
                outcomes = self._outcomes[:FLUSH_BATCH]
                del self._outcomes[:FLUSH_BATCH]
                events, self._events = self._events, []
                releases, self._releases = self._releases, []
                try:
                    with anyio.CancelScope(shield=True):
                        await self._write(outcomes, events, releases)
                    delay = 0.05
                    self.flushes += 1
                    self.flushed.notify()
                    continue
                except StoreError as exc:
                    failure: Exception = exc
                # Nothing is dropped: the batch goes back to the front of the buffers.
                self._outcomes[:0] = outcomes
                self._events[:0] = events
                self._releases[:0] = releases
                if deadline is not None and time.monotonic() + delay > deadline:
                    return False
                logger.warning(
                    "worker %s: writing %d result(s) failed (%s); trying again in %.2fs",
                    self.worker_id,
                    len(outcomes) + len(events) + len(releases),
                    failure,
                    delay,
                )
                await anyio.sleep(delay)
                delay = min(delay * 2, 2.0)
            return True

    async def _write(
        self, outcomes: list[Outcome], events: list[NewEvent], releases: list[tuple[int, str]]
    ) -> None:
        if outcomes or events:
            try:
                await self._finish(outcomes, events)
            except StoreError as exc:
                if not _rejected_by_content(exc):
                    raise
                await self._split(outcomes, events)
        if releases:
            await self.store.release(releases, f"released by worker {self.worker_id}")

    async def _finish(self, outcomes: list[Outcome], events: list[NewEvent]) -> None:
        if not _with_follow_up(outcomes):
            rejected = await self.store.finish(outcomes, events)
        else:
            handed = [o for o in outcomes if o.hand_over is not None]
            if handed:
                outcomes = [o for o in outcomes if o.hand_over is None]
            rejected = await self.store.finish(outcomes, events)
            if handed:
                rejected.extend(await self._hand_over(handed))
                self._count(handed, rejected)
            self._written(outcomes, rejected)
        if self._labels:
            self._count(outcomes, rejected)
        if rejected:
            self.rejected += len(rejected)
            logger.warning("late results rejected for jobs %s", rejected)

    async def _hand_over(self, outcomes: list[Outcome]) -> list[int]:
        """Turn handed-over jobs into tracking jobs; returns the ids whose lease was lost."""
        changes = [
            Change(
                o.job_id,
                frozenset({JobStatus.RUNNING}),
                JobStatus.RUNNING,
                lease_token=o.lease_token,
                new_token=uuid.uuid4().hex,
                message=o.message,
                lease_for=o.hand_over,
                track_ttl=o.hand_over,
                usage=o.usage,
            )
            for o in outcomes
        ]
        applied = set(await self.store.apply(changes))
        return [o.job_id for o in outcomes if o.job_id not in applied]

    def _count(self, outcomes: list[Outcome], rejected: list[int]) -> None:
        """Count written outcomes: final ones as finished, failed attempts that wait for
        another as retries (throttled and given-back attempts are neither).
        """
        labels = self._labels
        lost = set(rejected)
        finished: dict[tuple[tuple[str, str], JobStatus], int] = {}  # a batch has few keys
        for o in outcomes:
            pair = labels.pop(o.job_id, None)
            if pair is None or o.job_id in lost:
                continue
            status = o.status
            if status is JobStatus.QUEUED:
                if not o.give_back:
                    COUNTS.add_retry(*pair)
            elif status is not JobStatus.RUNNING:
                key = (pair, status)
                finished[key] = finished.get(key, 0) + 1
                if o.spawned and status is JobStatus.SUCCEEDED:
                    COUNTS.add_inserted(o.spawned)
        for (pair, status), jobs in finished.items():
            COUNTS.add_finished(pair[0], pair[1], status.value, jobs)

    def _written(self, outcomes: list[Outcome], rejected: list[int]) -> None:
        due = [o for o in outcomes if o.callback]
        if not due:
            return
        lost = set(rejected)
        due = [o for o in due if o.job_id not in lost]
        if due and self.written is not None:
            self.written(due)

    async def _split(self, outcomes: list[Outcome], events: list[NewEvent]) -> None:
        """Write a refused batch piece by piece; rows the store refuses alone become
        errors of their jobs, or (events) are dropped with a log line.
        """
        for event in events:
            try:
                await self._finish([], [event])
            except StoreError as exc:
                if not _rejected_by_content(exc):
                    raise
                logger.error(
                    "job %d: an event could not be stored and is dropped: %s", event.job_id, exc
                )
        pending = [outcomes]
        while pending:
            part = pending.pop()
            try:
                await self._finish(part, [])
            except StoreError as exc:
                if not _rejected_by_content(exc):
                    raise
                if len(part) > 1:
                    half = len(part) // 2
                    pending.extend([part[half:], part[:half]])
                else:
                    await self._finish([_as_failure(part[0], exc)], [])


def _with_follow_up(outcomes: list[Outcome]) -> bool:
    """Whether an outcome is due a lifecycle callback or hands its job over (a loop: a
    generator's every step would be a call, once per job).
    """
    for o in outcomes:
        if o.callback or o.hand_over is not None:
            return True
    return False


def _rejected_by_content(exc: StoreError) -> bool:
    """True when the database refused the data itself (not a lost connection, a
    timeout or a lock): writing the same rows again would fail again.
    """
    cause = exc.__cause__
    name = type(cause).__name__ if cause is not None else ""
    text = str(exc).lower()
    return any(
        marker in name or marker in text
        for marker in (
            "DataError",
            "UntranslatableCharacter",
            "CharacterNotInRepertoire",
            "InvalidTextRepresentation",
            "InvalidParameterValue",
            "UnicodeEncodeError",
            "invalid input syntax",
            "unsupported unicode",
            "surrogates not allowed",
            "numeric value out of range",
            "value too long",
            "string or blob too big",
        )
    )


def _as_failure(outcome: Outcome, exc: StoreError) -> Outcome:
    """The outcome that records why `outcome` could not be stored (a permanent error)."""
    error = {
        "attempt": outcome.attempt,
        "type": "StoreRejected",
        "message": f"the database refused this attempt's result: {exc}",
        "traceback": "".join(traceback.format_exception(exc)),
        "at": datetime.now(UTC).isoformat(),
    }
    return replace(
        outcome,
        status=JobStatus.FAILED,
        output=None,
        error=error,
        retry_in=0.0,
        message="the result could not be stored",
        spawned=(),
        hand_over=None,
    )
