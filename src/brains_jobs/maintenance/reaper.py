"""The workers registry reaper: workers whose heartbeat went silent (killed, or cut off)
are removed from the registry by the leader; and queued jobs of a type that no live
worker knows are reported, since they would wait in silence.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..models import JobStatus

if TYPE_CHECKING:
    from ..config import Settings
    from ..models import Stats, WorkerInfo
    from .service import MaintenanceContext

logger = logging.getLogger("brains_jobs.maintenance")


def silence_limit(settings: Settings) -> float:
    """Seconds without a heartbeat after which a worker counts as dead."""
    return max(3 * min(5.0, settings.lease / 3), settings.leader_lease, 5.0)


def unserved_types(stats: Stats, workers: list[WorkerInfo]) -> list[str]:
    """Types of queued jobs that no live worker knows."""
    known = {t for w in workers for t in w.types}
    queued = {t for t, counts in stats.by_type.items() if counts.get(JobStatus.QUEUED)}
    return sorted(queued - known)


class Reaper:
    """Reaps dead workers and reports unserved job types (see the module docstring)."""

    name = "reaper"
    leader_only = True

    def __init__(self) -> None:
        self._reported: set[str] = set()
        self._last: set[str] = set()  # unserved at the previous pass

    def interval(self, settings: Settings) -> float:
        return silence_limit(settings)

    async def run_once(self, ctx: MaintenanceContext) -> int:
        reaped = await ctx.store.reap_workers(silence_limit(ctx.settings))
        if reaped:
            logger.warning("maintenance: workers %s went silent and were removed", reaped)
        unserved = set(unserved_types(await ctx.store.stats(), await ctx.store.workers()))
        # Reported once unserved on two passes in a row: a worker that is starting has
        # one pass to register.
        for name in sorted((unserved & self._last) - self._reported):
            logger.warning(
                "maintenance: queued jobs of type %r wait, but no live worker knows that"
                " type (start a worker with the plugin that provides it)",
                name,
            )
        self._reported = (self._reported | (unserved & self._last)) & unserved
        self._last = unserved
        return len(reaped)
