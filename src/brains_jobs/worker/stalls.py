"""Noticing a blocked event loop, and the job that blocked it.

A handler that does blocking work without `await` stops every other job, the heartbeats
and the result writer of its worker. A watchdog thread posts a probe to the loop a few
times per threshold (`call_soon_threadsafe`) and notices when one has waited longer
than the threshold; it then finds the job whose handler is on the loop thread's stack
(the frame of `AttemptRunner.run` holds it). Nothing on the hot path pays for this. A
loop found waiting in its selector (asyncio's own loop, idle) is not blocked: it gets no
probe, so an idle worker's loop is not woken for the watch at all.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from types import FrameType

import anyio

from .attempt import Held

logger = logging.getLogger("brains_jobs.worker")

PROBES = 4  # probes per threshold


class StallWatch:
    """Logs each stall of the event loop longer than `threshold` seconds, with the job."""

    def __init__(self, threshold: float, worker_id: str) -> None:
        self.threshold = threshold
        self.worker_id = worker_id
        self._loop_thread = threading.get_ident()
        self._stop = threading.Event()
        self._answered = threading.Event()
        #: Stalls seen: (seconds, job id or None), for tests and metrics.
        self.stalls: list[tuple[float, int | None]] = []
        #: Probes posted to the loop, for tests.
        self.probes = 0

    async def run(self) -> None:
        """Keep the watchdog thread running until cancelled."""
        if self.threshold <= 0:
            return
        self._loop_thread = threading.get_ident()
        self._stop.clear()
        loop = asyncio.get_running_loop()
        thread = threading.Thread(
            target=self._watch, args=(loop,), name="brains_jobs stall watch", daemon=True
        )
        thread.start()
        try:
            await anyio.sleep_forever()
        finally:
            self._stop.set()

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        reported = False
        posted = 0.0
        self._answered.set()
        while not self._stop.wait(self.threshold / PROBES):
            if self._answered.is_set():
                # The last probe ran: the loop is alive. Post the next one, unless the
                # loop waits for I/O or a timer, which shows it is not blocked.
                if self._loop_waits():
                    continue
                self._answered.clear()
                self.probes += 1
                posted = time.monotonic()
                reported = False
                try:
                    loop.call_soon_threadsafe(self._answered.set)
                except RuntimeError:  # the loop is closed
                    return
                continue
            blocked = time.monotonic() - posted
            if blocked < self.threshold or reported:
                continue
            reported = True
            job = self._blocking_job()
            self.stalls.append((blocked, None if job is None else job[0]))
            where = f"by job {job[0]} ({job[1]})" if job else "outside any job"
            logger.error(
                "worker %s: the event loop has been blocked for %.1fs %s; heartbeats and"
                " every other job wait (run blocking work in a thread, or use a plain"
                " `def` handler)",
                self.worker_id,
                blocked,
                where,
            )

    def _loop_waits(self) -> bool:
        """True when the loop thread is in its selector, called by the loop itself."""
        frame = sys._current_frames().get(self._loop_thread)
        if frame is None or frame.f_code.co_name != "select":
            return False
        caller = frame.f_back
        return caller is not None and caller.f_code.co_name == "_run_once"

    def _blocking_job(self) -> tuple[int, str] | None:
        frame: FrameType | None = sys._current_frames().get(self._loop_thread)
        while frame is not None:
            entry = frame.f_locals.get("entry")  # the attempt's frames hold it
            if isinstance(entry, Held):
                return entry.job.id, entry.job.type
            frame = frame.f_back
        return None
