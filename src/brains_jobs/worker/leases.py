"""Leases: renewing them, noticing cancel requests, recording handler starts, and fencing
this worker off when it cannot renew.

Every `lease / 3` seconds the keeper renews the leases of every job the worker holds
(running, and finished but not yet written). Between renewals it reads cancel requests
(a cheap read) and records the starts of handlers that have run for a while, so that a
crash is charged to jobs that were really running.

Self-fencing: when this worker's own clock says that the lease may have lapsed since
the last renewal that succeeded (with a margin), it cancels its handlers before anyone
else may take their jobs over, so that no job runs twice at once. A handler that ignores
its cancellation for `cancel_grace` seconds is reported, and its slot given to another
job while it goes on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from ..store.roles import WorkQueue
    from .attempt import Held
    from .results import ResultWriter

logger = logging.getLogger("brains_jobs.worker")

MARK_AFTER = 0.5  # seconds a handler runs before its start is recorded
CANCEL_GRACE = 1.0  # seconds a cancelled handler may take to stop before it is "stuck"


class LeaseKeeper:
    """Keeps a worker's leases (see the module docstring)."""

    def __init__(
        self,
        *,
        store: WorkQueue,
        worker_id: str,
        lease: float,
        held: Callable[[], Iterable[Held]],
        writer: ResultWriter,
        cancel: Callable[[int], object],
        stuck: Callable[[Held], None],
    ) -> None:
        self.store = store
        self.worker_id = worker_id
        self.lease = lease
        self._held = held
        self._writer = writer
        self._cancel = cancel
        self._stuck = stuck
        self.tick = min(0.5, lease / 8)
        self.beat_every = lease / 3
        self.margin = max(lease / 5, 2 * self.tick)
        #: Monotonic time the last successful renewal was sent.
        self.renewed = time.monotonic()

    async def run(self) -> None:
        """Renew, read cancel requests, mark starts, fence; until cancelled."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._watch)
            await self._keep()

    async def _watch(self) -> None:
        """Fence on time alone: a renewal that hangs (the database unreachable, its
        packets dropped) must not hold the fence back.
        """
        while True:
            await anyio.sleep(self.tick)
            if time.monotonic() - self.renewed > self.lease - self.margin:
                held = list(self._held())
                if held:
                    self._fence(held)

    async def _keep(self) -> None:
        last_beat = time.monotonic()
        while True:
            await anyio.sleep(self.tick)
            held = list(self._held())
            pending = self._writer.pending_leases()
            now = time.monotonic()
            if not held and not pending:
                self.renewed = last_beat = now
                continue
            self._check_stuck(held, now)
            try:
                if now - last_beat >= self.beat_every:
                    await self._renew(held, pending, now)
                    last_beat = now
                else:
                    await self._between_beats(held, now)
            except Exception as exc:
                logger.warning(
                    "worker %s: lease renewal failed (%s); trying again", self.worker_id, exc
                )

    async def _renew(self, held: list[Held], pending: list[tuple[int, str]], sent: float) -> None:
        started = [e for e in held if e.started_at is not None and not e.start_written]
        leases = [(e.job.id, e.job.lease_token) for e in held if not e.lost] + pending
        lost, asked = await self.store.heartbeat(
            leases, self.lease, started=[e.job.id for e in started]
        )
        self.renewed = sent
        for entry in started:
            entry.start_written = True
        by_id = {e.job.id: e for e in held}
        for job_id in lost:
            found = by_id.get(job_id)
            if found is not None and not found.lost:
                logger.warning("job %d: its lease was taken over; its result is discarded", job_id)
                found.lost = True
                found.cancel()
        for job_id in asked:
            self._cancel(job_id)

    async def _between_beats(self, held: list[Held], now: float) -> None:
        running = [e for e in held if e.started_at is not None and not e.lost]
        to_mark = [
            e for e in running if not e.start_written and now - (e.started_at or now) >= MARK_AFTER
        ]
        if to_mark:
            lost = await self.store.mark_started([(e.job.id, e.job.lease_token) for e in to_mark])
            for entry in to_mark:
                entry.start_written = entry.job.id not in lost
        if running:
            for job_id in await self.store.cancel_requested([e.job.id for e in running]):
                self._cancel(job_id)

    def _fence(self, held: list[Held]) -> None:
        for entry in held:
            if not entry.fenced and not entry.lost:
                logger.error(
                    "job %d: no lease renewal for %.1fs (lease %.1fs); stopping its handler"
                    " before another worker may take the job over",
                    entry.job.id,
                    time.monotonic() - self.renewed,
                    self.lease,
                )
                entry.fenced = True
                entry.cancel()

    def _check_stuck(self, held: list[Held], now: float) -> None:
        for entry in held:
            if entry.stuck or entry.started_at is None:
                continue
            since = entry.cancelled_at if entry.cancelled_at is not None else entry.deadline
            if since is not None and now - since > CANCEL_GRACE:
                logger.error(
                    "job %d (%s): its handler ignores cancellation (%.1fs); its slot goes"
                    " to another job while it runs on",
                    entry.job.id,
                    entry.job.type,
                    now - since,
                )
                self._stuck(entry)
