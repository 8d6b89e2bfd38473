"""The dependency promoter: a safety net for jobs that wait for others.

Dependents are resolved in the transaction that finishes their last parent. When that
cannot be (a parent claimed before the dependent was enqueued, finished by a worker
that died before resolving), the leader finds the waiting jobs whose count of pending
parents disagrees with their parents and settles them, by the same rules.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Settings
    from .service import MaintenanceContext

logger = logging.getLogger("brains_jobs.maintenance")

QUIET_FOR = 2.0  # seconds a waiting job must be untouched (its own resolution is done)


class Promoter:
    """Settles waiting jobs that a resolution missed (see the module docstring)."""

    name = "promoter"
    leader_only = True

    def __init__(self, *, batch: int = 500) -> None:
        self.batch = batch

    def interval(self, settings: Settings) -> float:
        return min(settings.rescue_interval, 5.0)

    async def run_once(self, ctx: MaintenanceContext) -> int:
        statuses = await ctx.store.sweep_waiting(QUIET_FOR, self.batch)
        if statuses:
            logger.warning(
                "maintenance: settled %d waiting job(s) a resolution missed", len(statuses)
            )
        return len(statuses)
