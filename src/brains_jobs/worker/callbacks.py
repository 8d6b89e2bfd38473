"""The worker's callback runner: runs the lifecycle callbacks of the jobs this worker
finished once their outcomes are written, a few at a time, and then clears their flags
(see `brains_jobs.callbacks`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import anyio

from .._signal import Signal
from ..callbacks import run_callback

if TYPE_CHECKING:
    from ..registry import Registry
    from ..store.records import Outcome
    from ..store.roles import Store

logger = logging.getLogger("brains_jobs.worker")

AT_ONCE = 10  # callbacks run at the same time, at most
BATCH = 100


class CallbackRunner:
    """Runs the callbacks of finished jobs (see the module docstring)."""

    def __init__(self, store: Store, registry: Registry) -> None:
        self.store = store
        self.registry = registry
        self._due: list[Outcome] = []
        self._signal = Signal()
        self._busy = 0  # batches under way (the runner's and the drain's)
        #: Callbacks run, for tests and logs.
        self.ran = 0

    def add(self, outcomes: list[Outcome]) -> None:
        """Outcomes written whose jobs are due a callback."""
        self._due.extend(outcomes)
        self._signal.notify()

    @property
    def idle(self) -> bool:
        """True when no callback waits or runs."""
        return not self._due and self._busy == 0

    async def run(self) -> None:
        """Run callbacks as they come, until cancelled."""
        while True:
            if not self._due:
                await self._signal.wait()
                continue
            await self.run_due()

    async def run_due(self) -> None:
        """Run the callbacks due now (a batch at a time) and clear their flags."""
        while self._due:
            batch, self._due = self._due[:BATCH], self._due[BATCH:]
            self._busy += 1
            try:
                await self._run_batch(batch)
            except Exception as exc:  # the flags stay: the sweeper runs them later
                logger.warning("callbacks of %d job(s) postponed: %s", len(batch), exc)
            finally:
                self._busy -= 1

    async def _run_batch(self, batch: list[Outcome]) -> None:
        status = {o.job_id: o.status for o in batch}
        jobs = await self.store.get_many(sorted(status))
        limiter = anyio.CapacityLimiter(AT_ONCE)

        async def one(job_id: int) -> None:
            async with limiter:
                job = by_id[job_id]
                await run_callback(self.registry.get(job.type), job, status[job_id])
                self.ran += 1

        by_id = {j.id: j for j in jobs if j.type in self.registry}
        async with anyio.create_task_group() as tg:
            for job_id in by_id:
                tg.start_soon(one, job_id)
        await self.store.callbacks_done([j.id for j in jobs])

    async def drain(self, timeout: float) -> None:
        """Give the callbacks due at shutdown up to `timeout` seconds."""
        with anyio.move_on_after(timeout):
            while not self.idle:
                if self._due:
                    await self.run_due()
                else:  # the runner's own batch is under way
                    await anyio.sleep(0.01)
