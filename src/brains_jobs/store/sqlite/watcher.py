"""Hearing other processes' commits on an SQLite file.

SQLite has no LISTEN/NOTIFY. `PRAGMA data_version` changes on a connection whenever
another connection (of any process) commits to the file, and reading it costs a look at
the WAL index in shared memory: no I/O. A thread of the store's own, with a read-only
connection of its own, reads it every `interval` seconds; when it moved, one indexed
read of the audit trail since the last look tells what happened: new events wake the
event readers, a job that became `queued` wakes the workers. So a job enqueued by a web
process is picked up by a worker process within a few milliseconds, and its progress
reaches a subscriber elsewhere as fast, while an idle process spends a fraction of a
percent of a core on it (it looks less often, every `IDLE_INTERVAL` once no event was
written for `QUIET_AFTER` seconds, every `DEEP_IDLE_INTERVAL` after `DEEP_QUIET_AFTER`).
Polling (`poll_interval`) stays as the fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger("brains_jobs.store")

INTERVAL = 0.001  # seconds between two looks at data_version while commits come
IDLE_INTERVAL = 0.025  # ... and once no event came for `QUIET_AFTER` seconds
QUIET_AFTER = 2.0
DEEP_IDLE_INTERVAL = 0.1  # ... and once none came for `DEEP_QUIET_AFTER` seconds
DEEP_QUIET_AFTER = 30.0

_NEWEST = "SELECT coalesce(max(seq), 0) FROM job_events"
_QUEUED_SINCE = (
    "SELECT EXISTS(SELECT 1 FROM job_events WHERE seq > ? AND kind = 'status'"
    " AND status = 'queued')"
)


def _slower(interval: float, quiet: float) -> float:
    """The interval between looks after `quiet` seconds without an event."""
    if quiet > DEEP_QUIET_AFTER:
        return max(interval, DEEP_IDLE_INTERVAL)
    if quiet > QUIET_AFTER:
        return max(interval, IDLE_INTERVAL)
    return interval


class CommitWatcher:
    """Calls `on_events` (and `on_work`, when a job became queued) on the event loop
    that started it, after other connections commit to the file at `path`.
    """

    def __init__(
        self,
        path: Path,
        *,
        on_events: Callable[[], None],
        on_work: Callable[[], None],
        interval: float = INTERVAL,
    ) -> None:
        self.path = path
        self.on_events = on_events
        self.on_work = on_work
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Start watching (from the event loop that is to be woken)."""
        if self._thread is not None:
            return
        self._loop = asyncio.get_running_loop()
        conn = sqlite3.connect(
            f"{self.path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False
        )
        conn.isolation_level = None  # autocommit: no read transaction stays open
        self._thread = threading.Thread(
            target=self._run, args=(conn,), name="brains-jobs-sqlite-watcher", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop watching; returns once the thread has ended."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def _run(self, conn: sqlite3.Connection) -> None:
        try:
            version = conn.execute("PRAGMA data_version").fetchone()[0]
            seen = conn.execute(_NEWEST).fetchone()[0]
            interval, last = self.interval, time.monotonic()
            while not self._stop.wait(interval):
                now = conn.execute("PRAGMA data_version").fetchone()[0]
                if now == version:
                    interval = _slower(interval, time.monotonic() - last)
                    continue
                version = now
                newest = conn.execute(_NEWEST).fetchone()[0]
                if newest == seen:  # a write that made no events (a lease, a presence)
                    continue
                interval, last = self.interval, time.monotonic()
                queued = conn.execute(_QUEUED_SINCE, (seen,)).fetchone()[0]
                seen = newest
                self._wake(queued=bool(queued))
        except sqlite3.Error as exc:  # the file went away: polling goes on without us
            if not self._stop.is_set():
                logger.warning("no longer watching %s for commits: %s", self.path, exc)
        finally:
            conn.close()

    def _wake(self, *, queued: bool) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed in between
            loop.call_soon_threadsafe(self.on_events)
            if queued:
                loop.call_soon_threadsafe(self.on_work)
