"""The callback sweeper: runs the lifecycle callbacks that the worker which finished a
job did not get to (it died between writing the outcome and running them), for the job
types this process knows. Every process sweeps; a job it takes is left alone by the
others for `QUIET_FOR` seconds (see `brains_jobs.callbacks`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..callbacks import run_callback

if TYPE_CHECKING:
    from ..config import Settings
    from .service import MaintenanceContext

logger = logging.getLogger("brains_jobs.maintenance")

QUIET_FOR = 30.0  # seconds a flagged job is left to the worker that finished it


class CallbackSweeper:
    """Runs overdue lifecycle callbacks (see the module docstring)."""

    name = "callbacks"
    leader_only = False

    def __init__(self, *, batch: int = 100, quiet_for: float = QUIET_FOR) -> None:
        self.batch = batch
        self.quiet_for = quiet_for

    def interval(self, settings: Settings) -> float:
        return min(settings.rescue_interval * 2, 10.0)

    async def run_once(self, ctx: MaintenanceContext) -> int:
        types = [d.name for d in ctx.registry if d.has_callbacks]
        if not types:
            return 0
        jobs = await ctx.store.callbacks_due(types, self.quiet_for, self.batch)
        for job in jobs:
            await run_callback(ctx.registry.get(job.type), job)
        if jobs:
            await ctx.store.callbacks_done([j.id for j in jobs])
            logger.info("maintenance: ran the overdue callbacks of %d job(s)", len(jobs))
        return len(jobs)
