"""Wake-ups across processes: LISTEN/NOTIFY on two channels.

`<schema>.work` is notified inside the transactions that queue jobs (triggers), so a
host's transactional enqueue is announced when, and only if, it commits.
`<schema>.events` is notified by the announcer task after a claim or a finish has
committed, in a transaction of its own: a NOTIFY in those transactions would cost each
commit a third of a millisecond (PostgreSQL signals every listening backend and
serialises notifying commits) on the way from enqueue to job start. The announcer sends
it on the LISTEN connection, idle but for its pings, so that it never waits behind the
claims and results for a pooled one (when every pooled connection is busy, events would
reach other processes only as one comes free); on a pooled one while there is no LISTEN
connection. Work notifications wake event readers too: queued jobs have events.

The LISTEN connection is opened the first time someone waits for a signal (a worker, an
event subscriber): a runtime that only enqueues never listens, and every commit that
notifies has one backend fewer to wake.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import anyio
import anyio.lowlevel
import asyncpg  # type: ignore[import-untyped]

from ..._signal import Signal
from ...exceptions import StoreError
from ...models import JobStatus
from .connection import DB_ERRORS, PostgresBase, describe_error

logger = logging.getLogger("brains_jobs.store.postgres")

_LISTENER_PING = 5.0  # seconds between health checks of the LISTEN connection
_ANNOUNCE_DELAY = 0.002  # seconds an events notification waits for others to join it


class Wakeup(Signal):
    """A `Signal` that keeps a notification nobody was waiting for, for the next waiter,
    and tells the store when someone first waits (so that it starts listening).

    A NOTIFY often lands while the worker is busy claiming, or while the event feeder is
    reading: with a plain Signal it would be lost, and the waiter would sleep a whole
    poll interval (which NOTIFY lets this store keep long). A kept notification costs at
    most one extra claim or read.
    """

    def __init__(self, on_wait: Callable[[], None]) -> None:
        super().__init__()
        self._on_wait = on_wait
        self._waiters = 0
        self._kept = False

    def notify(self) -> None:
        if not self._waiters:
            self._kept = True
        super().notify()

    def armed(self, also: asyncio.Event | None = None) -> asyncio.Event:
        self._on_wait()
        if self._kept:
            self._kept = False
            done = asyncio.Event()
            done.set()
            if also is not None:
                also.set()
            return done
        return super().armed(also)

    async def wait(self, timeout: float | None = None) -> bool:
        self._on_wait()
        if self._kept:
            self._kept = False
            await anyio.lowlevel.checkpoint()
            return True
        self._waiters += 1
        try:
            return await super().wait(timeout)
        finally:
            self._waiters -= 1


class PostgresWakeups(PostgresBase):
    """The LISTEN connection and the announcer of written events."""

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        self.work_signal = Wakeup(self._want_listener)
        self.event_signal = Wakeup(self._want_listener)
        self._listener: asyncpg.Connection | None = None
        self._listener_busy = asyncio.Lock()  # its pings and the announcements take turns
        self._listener_wanted = asyncio.Event()
        self._announce_wanted = asyncio.Event()
        self._unannounced = False  # events written, no announcement sent since
        self._announce_timer: asyncio.TimerHandle | None = None  # sets _announce_wanted
        self._closing = False
        # A notification and nothing else: losing it to a crash loses nothing, so its
        # commit does not wait for the WAL to reach the disk.
        self._sql_announce = (
            "SELECT set_config('synchronous_commit', 'off', true),"
            f" pg_notify('{self.events_channel}', '')"
        )

    @property
    def listener_pid(self) -> int | None:
        """The server pid of the LISTEN connection, while there is one."""
        return None if self._listener is None else self._listener.get_server_pid()

    def _background(self) -> dict[str, Coroutine[Any, Any, None]]:
        return {"listener": self._listen(), "announcer": self._announce()}

    async def _before_close(self) -> None:
        # Events written just before closing (a burst worker's last results) are
        # announced now, not left for other processes' next poll; the announcer may be
        # half-way through sending, and is about to be cancelled.
        # The announcer stops between two announcements (cancelling it while the pool
        # opens a connection for it would leave that connection half made).
        self._closing = True
        if self._announce_timer is not None:
            self._announce_timer.cancel()
        self._announce_wanted.set()
        for task in self._tasks:
            if task.get_name().startswith("brains_jobs announcer"):
                with anyio.move_on_after(2.0):
                    await asyncio.shield(task)
        if self._unannounced:
            try:
                await self.fetch("announcement", self._sql_announce, idempotent=True)
            except StoreError as exc:
                logger.warning("%s", exc)

    def _want_listener(self) -> None:
        if not self._listener_wanted.is_set():
            self._listener_wanted.set()

    async def _listen_connect(self) -> asyncpg.Connection:
        try:
            conn: asyncpg.Connection = await asyncpg.connect(
                self.dsn,
                timeout=max(self.statement_timeout, 1.0),
                server_settings=self.server_settings("listener"),
            )
        except DB_ERRORS as exc:
            raise StoreError(f"cannot connect to PostgreSQL: {describe_error(exc)}") from exc
        try:
            await conn.add_listener(self.work_channel, self._on_work)
            await conn.add_listener(self.events_channel, self._on_events)
        except BaseException as exc:  # cancelled too: never leave the connection open
            conn.terminate()
            if isinstance(exc, DB_ERRORS):
                raise StoreError(f"LISTEN failed: {describe_error(exc)}") from exc
            raise
        return conn

    def _on_work(self, _conn: object, pid: int, _channel: str, _payload: str) -> None:
        if pid not in self._own_pids:  # this process's own writes signal directly
            self.work_signal.notify()
            self.event_signal.notify()

    def _on_events(self, _conn: object, pid: int, _channel: str, _payload: str) -> None:
        if pid not in self._own_pids and pid != self.listener_pid:  # not our announcement
            self.event_signal.notify()

    async def _listen(self) -> None:
        """Once wanted, keep a LISTEN connection up; each time it (re)connects, wake every
        waiter: what was notified before is in the tables.
        """
        await self._listener_wanted.wait()
        delay = 0.05
        while True:
            try:
                conn = await self._listen_connect()
            except Exception as exc:
                logger.warning("LISTEN connection: %s; retrying in %.2fs", exc, delay)
                await anyio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.05
            self.work_signal.notify()
            self.event_signal.notify()
            self._listener = conn
            try:
                await self._watch(conn)
            except Exception:  # never let the wake-ups die: log, reconnect
                logger.exception("LISTEN connection failed")
            finally:
                self._listener = None
                conn.terminate()
            await anyio.sleep(delay)

    async def _watch(self, conn: asyncpg.Connection) -> None:
        """Return when `conn` is lost (closed by the server, or not answering a ping)."""
        lost = anyio.Event()
        conn.add_termination_listener(lambda _c: lost.set())
        while True:
            with anyio.move_on_after(_LISTENER_PING):
                await lost.wait()
            if lost.is_set() or conn.is_closed():
                logger.warning("LISTEN connection lost")
                return
            try:
                with anyio.fail_after(_LISTENER_PING):
                    async with self._listener_busy:
                        await conn.execute("SELECT 1")
            except DB_ERRORS as exc:
                logger.warning("LISTEN connection lost: %s", describe_error(exc))
                return

    def announce_events(self) -> None:
        """Have the announcer tell other processes that events were written, in
        `_ANNOUNCE_DELAY`: the jobs just claimed start first, and the writes of that
        moment share the notification. A timer wakes the announcer, not a sleep in its
        task, which would run before the lanes it means to let go first.
        """
        self._unannounced = True
        if self._announce_timer is None and not self._closing:
            loop = asyncio.get_running_loop()
            self._announce_timer = loop.call_later(_ANNOUNCE_DELAY, self._announce_due)

    def _announce_due(self) -> None:
        self._announce_timer = None
        self._announce_wanted.set()

    def written(self, statuses: Sequence[JobStatus] = (), *, events: bool = True) -> None:
        super().written(statuses, events=events)
        # A job that became `queued` was announced by the trigger on the work channel,
        # which wakes event readers too.
        if events and JobStatus.QUEUED not in statuses:
            self.announce_events()

    async def _announce(self) -> None:
        while True:
            await self._announce_wanted.wait()
            if self._closing:
                return
            self._announce_wanted.clear()
            try:
                await self._send_announcement()
            except StoreError as exc:  # readers still poll
                logger.warning("%s", exc)
                await anyio.sleep(1.0)
            else:
                # Events written while it was sent have an announcement of their own due.
                self._unannounced = (
                    self._announce_timer is not None or self._announce_wanted.is_set()
                )

    async def _send_announcement(self) -> None:
        """Notify the events channel on the LISTEN connection, or on a pooled one while
        there is none (or it just failed: its watcher will notice and reconnect).
        """
        conn = self._listener
        if conn is not None and not conn.is_closed():
            try:
                async with self._listener_busy:
                    await conn.execute(self._sql_announce, timeout=self.statement_timeout)
                return
            except DB_ERRORS as exc:
                logger.info("announcing on the LISTEN connection failed (%s)", exc)
        await self.fetch("announcement", self._sql_announce, idempotent=True)
