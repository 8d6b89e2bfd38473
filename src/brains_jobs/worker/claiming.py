"""Claiming: the loop that keeps a worker's buffer filled, in batches that adapt to the
work, with jobs of limited types claimed apart and jobs that crashed a worker run alone.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import anyio

from .._signal import Signal
from ..metrics import COUNTS
from .attempt import Held
from .results import ResultWriter

if TYPE_CHECKING:
    from ..store.roles import Store

logger = logging.getLogger("brains_jobs.worker")

# After a claim of limited jobs met the limits, the next one waits this long at most
# (sooner when this worker wrote results or a job was announced): other workers free
# places and rates allow new starts in the meantime.
LIMITED_QUIET = 0.025


class Claiming:
    """The claim loop of a `Worker` (its state is the worker's)."""

    id: str
    store: Store
    concurrency: int
    prefetch: int
    fixed_prefetch: int | None
    max_prefetch: int
    queues: list[str] | None
    types: list[str]
    lease: float
    burst: bool
    max_jobs: int | None
    writer: ResultWriter
    _held: dict[int, Held]
    _ready: collections.deque[Held]
    _ready_signal: Signal
    _slot_freed: Signal
    _wake: Signal
    _stopping: bool
    _forced: bool
    _stuck: int
    _claimed: int
    _retries: dict[int, float]
    _limited: bool
    _limited_quiet_until: float
    _limited_blocked_at: int
    _announced: bool
    _plain_quiet_until: float

    def _free_slots(self) -> int:
        capacity = self.concurrency + self.prefetch
        busy = len(self._held) - self._stuck
        # Outcomes not written yet hold leases too. Past one full claim of them they
        # count against the next claims: a database that takes results more slowly than
        # the handlers make them is not handed ever more jobs, and the buffer stays
        # bounded (at twice the claim capacity).
        busy += max(0, self.writer.backlog - capacity)
        free = capacity - busy
        if self.max_jobs is not None:
            free = min(free, self.max_jobs - self._claimed)
        return free

    async def _claim_loop(self) -> None:
        while not self._stopping:
            if self.max_jobs is not None and self._claimed >= self.max_jobs:
                return
            free = self._free_slots()
            if free <= 0:
                await self._slot_or_flush()
                continue
            waiting = len(self._ready)
            announced, self._announced = self._announced, False
            claimed = await self._claim_limited(free, announced)
            if self._limited and not announced and time.monotonic() < self._plain_quiet_until:
                rest: list[Held] | None = []  # none were ready a moment ago
            else:
                rest = await self._claim(free - len(claimed), isolated=False)
                if self._limited and rest == [] and free > len(claimed):
                    # Between claims of limited jobs, look for plain ones less often.
                    self._plain_quiet_until = time.monotonic() + 0.05
            if rest is None:
                continue
            claimed += rest
            if len(claimed) == free:
                self._adapt(waiting)
                # Claim again once the lanes have taken most of this batch.
                while len(self._ready) > self.concurrency and not self._stopping:
                    await self._slot_freed.wait(1.0)
                continue
            if claimed:
                # The queue had fewer ready jobs than asked for: let the lanes start
                # them before looking again (asyncio's own yield: anyio's looks up the
                # backend first, while the lanes wait for this loop to yield).
                await asyncio.sleep(0)
            elif not self._held and await self._run_alone():
                continue
            if self.burst and not self._held and await self._nothing_left():
                return
            await self._idle_wait()

    async def _slot_or_flush(self) -> None:
        """Wait until a lane frees a slot or the writer wrote a batch (a second at most)."""
        woken = asyncio.Event()
        self._slot_freed.armed(woken)
        self.writer.flushed.armed(woken)
        with anyio.move_on_after(1.0):
            await woken.wait()
        woken.set()

    async def _claim_limited(self, free: int, announced: bool) -> list[Held]:
        """Jobs of limited types first (a few at a time: their claim costs more).

        A claim that got fewer than it asked for met the limits (or the end of the
        queue): the next one waits until this worker wrote results of its own (which
        free places of its keys), a new job was announced, or `LIMITED_QUIET` passed.
        """
        if not self._limited:
            return []
        if (
            self._limited_blocked_at == self.writer.flushes
            and time.monotonic() < self._limited_quiet_until
            and not announced
        ):
            return []
        want = min(free, self.concurrency)
        claimed = await self._claim(want, isolated=False, limited=True) or []
        if len(claimed) < want:
            self._limited_blocked_at = self.writer.flushes
            self._limited_quiet_until = time.monotonic() + LIMITED_QUIET
        else:
            self._limited_blocked_at = -1
        return claimed

    async def _claim(
        self, limit: int, *, isolated: bool, limited: bool = False
    ) -> list[Held] | None:
        if limit <= 0:
            return []
        try:
            jobs = await self.store.claim(
                worker_id=self.id,
                queues=self.queues,
                types=self.types,
                limit=limit,
                lease=self.lease,
                isolated=isolated,
                limited=limited,
            )
        except Exception as exc:
            logger.warning("worker %s: claiming failed (%s); trying again", self.id, exc)
            await anyio.sleep(1.0)
            return None
        COUNTS.observe_waits(jobs)
        retries = self._retries
        entries = []
        for job in jobs:
            if retries:
                retries.pop(job.id, None)
            entry = Held(job, limited)  # positionally: once per job
            self._held[job.id] = entry
            self._ready.append(entry)
            entries.append(entry)
        self._claimed += len(entries)
        if entries:
            self._ready_signal.notify()
        return entries

    async def _run_alone(self) -> bool:
        """Run one job that crashed a worker before, with nothing else running, so that
        a crash during it is its own. True when there was one.
        """
        claimed = await self._claim(1, isolated=True)
        if not claimed and self._limited:
            claimed = await self._claim(1, isolated=True, limited=True)
        if not claimed:
            return False
        logger.info(
            "worker %s: running job %d alone (it crashed a worker before)",
            self.id,
            claimed[0].job.id,
        )
        while self._held and not self._forced:
            await self._slot_freed.wait(1.0)
        return True

    def _adapt(self, waiting: int) -> None:
        """Grow the batch while the lanes ran dry before a full claim; shrink it while
        claimed jobs were still waiting for a lane.
        """
        if self.fixed_prefetch is not None:
            return
        if waiting == 0:
            self.prefetch = min(self.prefetch * 2, self.max_prefetch)
        elif waiting > self.prefetch // 2:
            self.prefetch = max(self.prefetch // 2, self.concurrency)

    async def _nothing_left(self) -> bool:
        """Burst mode is done when no job is ready and none of this worker's own failed
        attempts waits for its retry. Jobs scheduled for later by others are left.
        """
        await self.writer.flush()
        # A retry is forgotten when this worker claims it again, or a while after it was
        # due (another worker may have taken it); its stored run time is a little later
        # than the due time noted here, since results are written in batches.
        now = time.monotonic()
        self._retries = {i: due for i, due in self._retries.items() if due + 5.0 > now}
        if self._retries:
            return False
        ready = await self.store.next_ready(self.queues, self.types)
        return ready is None or ready > datetime.now(UTC)

    async def _idle_wait(self) -> None:
        """Wait for a wake-up, or for the next job to be due. When the poll interval
        passes without either, the queue is read again (one read), and the worker claims
        only if a job is due: an idle worker does not claim once per interval. A burst
        worker goes back to its loop, which decides when it is done.
        """
        while True:
            # Arm the wake-ups before reading the queue, so that a notification arriving
            # during the read is not lost.
            woken = asyncio.Event()  # set by the first of them
            wakeups = [self.store.work_signal.armed(woken), self._wake.armed(woken)]
            if self._held:
                wakeups.append(self._slot_freed.armed(woken))
            if self._limited_blocked_at >= 0:
                wakeups.append(self.writer.flushed.armed(woken))
            timeout = self.store.poll_interval
            try:
                ready = await self.store.next_ready(self.queues, self.types)
            except Exception as exc:
                logger.warning("worker %s: reading the queue failed: %s", self.id, exc)
                ready = None
            if ready is not None:
                timeout = min(timeout, max(0.0, (ready - datetime.now(UTC)).total_seconds()))
            if self._limited_blocked_at >= 0:
                # The ready jobs may be limited ones held back by their limits: look
                # again when a wake-up comes or the pause is over, not at once.
                pause = self._limited_quiet_until - time.monotonic()
                timeout = max(timeout, min(pause, self.store.poll_interval))
            if timeout <= 0 or self._stopping or any(w.is_set() for w in wakeups):
                woken.set()
                self._announced = wakeups[0].is_set()
                return
            # A timer sets the event, rather than a cancel scope around the wait: the
            # scope's exit is the costliest step from a notification to the claim.
            timer = asyncio.get_running_loop().call_later(timeout, woken.set)
            try:
                await woken.wait()
            finally:
                timer.cancel()
                woken.set()
            self._announced = wakeups[0].is_set()
            if self.burst or self._stopping or any(w.is_set() for w in wakeups):
                return
