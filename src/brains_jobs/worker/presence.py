"""A worker's entry in the workers registry: recorded at start, refreshed while it runs,
removed when it stops. A worker that dies without removing itself is reaped by the
leader once its heartbeat is old (`brains_jobs.maintenance.reaper`).
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import socket
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import anyio

from ..models import WorkerInfo

if TYPE_CHECKING:
    from ..store.roles import Maintenance

logger = logging.getLogger("brains_jobs.worker")


def _version() -> str | None:
    try:
        return importlib.metadata.version("brains-jobs")
    except importlib.metadata.PackageNotFoundError:
        return None


class Presence:
    """Keeps one worker's registry entry current."""

    def __init__(
        self,
        store: Maintenance,
        *,
        worker_id: str,
        queues: Sequence[str] | None,
        types: Sequence[str],
        concurrency: int,
        running: Callable[[], int],
        interval: float,
    ) -> None:
        self.store = store
        self.interval = interval
        self._running = running
        self.info = WorkerInfo(
            id=worker_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            queues=list(queues or []),
            types=list(types),
            concurrency=concurrency,
            started_at=datetime.now(UTC),
            heartbeat_at=datetime.now(UTC),
            version=_version(),
        )

    async def register(self) -> None:
        """Record this worker (failures are logged: the registry is not the work)."""
        try:
            await self.store.register_worker(self.info)
        except Exception as exc:
            logger.warning("worker %s: could not record itself: %s", self.info.id, exc)

    async def run(self) -> None:
        """Refresh the heartbeat every `interval` seconds, until cancelled."""
        while True:
            await anyio.sleep(self.interval)
            try:
                if not await self.store.beat_worker(self.info.id, self._running()):
                    await self.store.register_worker(self.info)  # reaped while paused
            except Exception as exc:
                logger.warning("worker %s: registry heartbeat failed: %s", self.info.id, exc)

    async def remove(self) -> None:
        """Remove this worker from the registry (shielded: it runs at exit)."""
        with anyio.CancelScope(shield=True), anyio.move_on_after(5.0):
            try:
                await self.store.remove_worker(self.info.id)
            except Exception as exc:
                logger.warning("worker %s: could not remove itself: %s", self.info.id, exc)
