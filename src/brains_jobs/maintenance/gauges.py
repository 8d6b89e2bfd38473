"""The queue gauges: the leader counts the unfinished jobs by queue and status once per
interval (`metrics_interval`) and saves the counts as a snapshot, which every metrics
scrape of every process reads (one row) instead of counting jobs itself.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Settings
    from .service import MaintenanceContext

#: The name the snapshot is saved under.
SNAPSHOT = "queues"


class QueueGauges:
    """Counts the queues for the metrics gauges (see the module docstring)."""

    name = "queue-gauges"
    leader_only = True

    def interval(self, settings: Settings) -> float:
        return settings.metrics_interval

    async def run_once(self, ctx: MaintenanceContext) -> int:
        depths = await ctx.store.queue_depths()
        data = {
            # The queues the job types use, so that an empty one shows as zeros.
            "queues": sorted({d.queue for d in ctx.registry}),
            "depth": [[d.queue, d.status, d.count] for d in depths],
            "oldest_ready_age": {
                d.queue: d.oldest_ready_age
                for d in depths
                if d.status == "queued" and d.oldest_ready_age is not None
            },
        }
        await ctx.store.save_snapshot(SNAPSHOT, json.dumps(data))
        return len(depths)
