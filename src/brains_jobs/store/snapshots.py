"""The snapshots role: what the leader counts once per interval, kept for readers.

Counting jobs by queue and status costs a scan of the unfinished jobs; a metrics scrape
must not pay for it, nor one per scraper. The leader counts (`queue_depths`) every
interval and saves the result under a name (`save_snapshot`); scrapes read that one row
(`snapshot`).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """How many unfinished jobs of one queue are in one status; for `queued`, how long
    the oldest ready one has waited since its run time (seconds; None when none is ready).
    """

    queue: str
    status: str
    count: int
    oldest_ready_age: float | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A saved snapshot: when it was taken (database clock) and its JSON text."""

    taken_at: datetime
    data: str


class Snapshots(abc.ABC):
    """Counting the queues, and keeping named snapshots."""

    @abc.abstractmethod
    async def queue_depths(self) -> list[QueueDepth]:
        """The unfinished jobs (waiting, queued, running) counted by queue and status,
        with the age of the oldest ready queued job of each queue (see `QueueDepth`).
        """

    @abc.abstractmethod
    async def save_snapshot(self, name: str, data: str) -> None:
        """Keep `data` (JSON text) as snapshot `name`, taken now; replaces the last one."""

    @abc.abstractmethod
    async def snapshot(self, name: str) -> Snapshot | None:
        """The last snapshot saved as `name`, or None (one primary-key read)."""
