"""The pruner: finished jobs, their events and their artifacts are deleted once older
than the retention of their status (`Retention`), by the leader, in bounded batches.

A pass deletes at most `max_batches` batches of `prune_batch` jobs per status, so that
a large backlog is worked off over several passes without long transactions.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..models import JobStatus

if TYPE_CHECKING:
    from ..config import Settings
    from .service import MaintenanceContext

logger = logging.getLogger("brains_jobs.maintenance")


class Pruner:
    """Deletes finished jobs past their retention (see the module docstring)."""

    name = "pruner"
    leader_only = True

    def __init__(self, *, max_batches: int = 10) -> None:
        self.max_batches = max_batches

    def interval(self, settings: Settings) -> float:
        return settings.prune_interval

    async def run_once(self, ctx: MaintenanceContext) -> int:
        periods = {JobStatus(s): age for s, age in ctx.settings.retention.periods().items()}
        if not periods:
            return 0
        total = 0
        for _ in range(self.max_batches):
            ids = await ctx.store.prune(periods, ctx.settings.prune_batch)
            for job_id in ids:
                await ctx.artifacts.delete_job(job_id)
            total += len(ids)
            if len(ids) < ctx.settings.prune_batch:
                break
        if total:
            logger.info("maintenance: pruned %d finished job(s)", total)
        return total
