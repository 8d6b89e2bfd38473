"""Stopping a worker on SIGTERM/SIGINT: the first signal drains, the second cancels."""

from __future__ import annotations

import logging
import signal
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from .worker import Worker

logger = logging.getLogger("brains_jobs.worker")


async def stop_on_signals(worker: Worker) -> None:
    """Until cancelled: the first SIGTERM/SIGINT stops claiming and lets running jobs
    finish within the worker's `shutdown_timeout`; a second one cancels them at once.
    """
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            name = signal.Signals(signum).name
            if worker.stopping:
                logger.warning("second %s: cancelling running jobs now", name)
                worker.stop(force=True)
            else:
                logger.warning(
                    "%s: finishing running jobs (up to %.0fs), then stopping",
                    name,
                    worker.shutdown_timeout,
                )
                worker.stop()
