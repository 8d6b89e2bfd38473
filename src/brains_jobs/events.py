"""The event bus: every subscriber gets its own bounded stream of job events.

Events are rows of the `job_events` table, so they have one order (`seq`) for every
process sharing the database. One feeder per runtime tails the table (woken at once by
this process's own writes, by the backend's notifications where it has them, and by
polling otherwise) and offers each new event to every subscription. A subscription that
falls behind loses events instead of slowing anyone down, and is told how many it lost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Collection
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

import anyio
from anyio.abc import TaskStatus

from ._signal import Signal
from .models import EventKind, JobEvent

if TYPE_CHECKING:
    from types import TracebackType

    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

    from .store.roles import Store

logger = logging.getLogger("brains_jobs.events")

DEFAULT_BUFFER = 1000


class EventSubscriber(Protocol):
    """A plugin's async callback, called with each event in order."""

    def __call__(self, event: JobEvent, /) -> Awaitable[None]: ...


class Subscription:
    """An async iterator over job events, from a starting point on, in `seq` order.

    Use it as an async context manager (`async with bus.subscribe() as events:`) or
    iterate it directly; it leaves the bus when closed or when iteration stops.
    """

    def __init__(
        self,
        bus: EventBus,
        *,
        job_id: int | None,
        types: Collection[str] | None,
        kinds: Collection[EventKind] | None,
        after: int | None,
        buffer: int,
    ) -> None:
        self._bus = bus
        self.job_id = job_id
        self.types = None if types is None else frozenset(types)
        self.kinds = None if kinds is None else frozenset(kinds)
        self._after = after
        send, receive = anyio.create_memory_object_stream[JobEvent](buffer)
        self._send: MemoryObjectSendStream[JobEvent] = send
        self._receive: MemoryObjectReceiveStream[JobEvent] = receive
        self._dropped: list[int] = []
        self._joined = False
        self._closed = False

    def matches(self, event: JobEvent) -> bool:
        """True when this subscription wants `event`."""
        return (
            (self.job_id is None or event.job_id == self.job_id)
            and (self.types is None or event.job_type in self.types)
            and (self.kinds is None or event.kind in self.kinds)
        )

    def offer(self, event: JobEvent) -> None:
        """Queue `event` without waiting; count it as dropped when the buffer is full."""
        if self._closed or not self.matches(event):
            return
        if self._dropped:
            stats = self._send.statistics()
            if stats.current_buffer_used >= stats.max_buffer_size:  # still full: no marker yet
                self._dropped.append(event.seq)
                return
            try:
                self._send.send_nowait(self._dropped_marker())
            except anyio.WouldBlock:
                self._dropped.append(event.seq)
                return
            self._dropped = []
        try:
            self._send.send_nowait(event)
        except anyio.WouldBlock:
            self._dropped.append(event.seq)

    def _dropped_marker(self) -> JobEvent:
        return JobEvent(
            seq=self._dropped[-1],
            job_id=0,
            job_type="",
            kind=EventKind.DROPPED,
            message=f"missed {len(self._dropped)} event(s): this subscriber fell behind",
            data={
                "missed": len(self._dropped),
                "first_seq": self._dropped[0],
                "last_seq": self._dropped[-1],
            },
            at=datetime.now(UTC),
        )

    async def _next_live(self) -> JobEvent | None:
        """The next buffered event; the drop marker once the buffer is drained."""
        try:
            return self._receive.receive_nowait()
        except anyio.WouldBlock:
            if self._dropped:
                marker = self._dropped_marker()
                self._dropped = []
                return marker
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            return None
        try:
            return await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            return None

    async def _join(self) -> None:
        if self._joined:
            return
        self._joined = True
        self._bus._add(self)
        try:
            if self._after is None:
                self._after = await self._bus.store.last_seq()
            # The feeder's starting point is taken now, not at its next turn: a write
            # that begins after this returns is then either behind it or a gap it waits
            # for, never skipped.
            while self._bus.cursor is None:
                await self._bus.cursor_moved.wait(0.5)
        except BaseException:
            self.close()
            raise

    async def __aenter__(self) -> Subscription:
        await self._join()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Leave the bus; iteration ends."""
        if not self._closed:
            self._closed = True
            self._bus._remove(self)
            self._send.close()
            self._receive.close()

    def __aiter__(self) -> AsyncIterator[JobEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[JobEvent]:
        await self._join()
        try:
            # Catch up from the table up to where the feeder is: everything after that
            # point reaches this subscription's stream, so together they never gap.
            assert self._after is not None
            last = self._after
            caught_up = False
            while not caught_up:
                fed = self._bus.cursor
                if fed is None:
                    await self._bus.cursor_moved.wait(0.5)
                    continue
                page = await self._bus.store.events_after(last, job_id=self.job_id)
                caught_up = len(page) < 1000
                for event in page:
                    if event.seq > fed:
                        caught_up = True
                        break
                    last = event.seq
                    if self.matches(event):
                        yield event
                if caught_up:
                    last = max(last, fed)
            # Events the stream had no room for while catching up came from the table.
            self._dropped = [seq for seq in self._dropped if seq > last]
            while (live := await self._next_live()) is not None:
                if live.kind is EventKind.DROPPED or live.seq > last:
                    if live.kind is not EventKind.DROPPED:
                        last = live.seq
                    yield live
        finally:
            self.close()


class EventBus:
    """Fans the store's events out to subscriptions; owned and run by the `Runtime`."""

    def __init__(self, store: Store, *, gap_timeout: float = 2.0) -> None:
        self.store = store
        self._subscriptions: list[Subscription] = []
        self._has_subscribers = Signal()
        #: The `seq` up to which events were offered to subscriptions; None while idle.
        self.cursor: int | None = None
        #: Seconds a gap in `seq` may hold later events back (see `_in_order`).
        self.gap_timeout = gap_timeout
        self._gap_since: float | None = None
        self.cursor_moved = Signal()

    def subscribe(
        self,
        *,
        job_id: int | None = None,
        types: Collection[str] | None = None,
        kinds: Collection[EventKind] | None = None,
        after: int | None = None,
        buffer: int = DEFAULT_BUFFER,
    ) -> Subscription:
        """A subscription to events of `job_id`, of job `types`, of event `kinds`.

        `after` is the `seq` to start after: None means from now on, 0 the whole history.
        """
        return Subscription(
            self, job_id=job_id, types=types, kinds=kinds, after=after, buffer=buffer
        )

    def _add(self, sub: Subscription) -> None:
        self._subscriptions.append(sub)
        self._has_subscribers.notify()
        self.store.event_signal.notify()

    def _remove(self, sub: Subscription) -> None:
        if sub in self._subscriptions:
            self._subscriptions.remove(sub)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Tail the events table while anyone listens, until cancelled."""
        task_status.started()
        while True:
            if not self._subscriptions:
                self.cursor = None
                await self._has_subscribers.wait()
                continue
            # Armed before the read: a commit announced while it runs wakes the wait
            # below at once (its rows may have come too late for the read).
            woken = self.store.event_signal.armed()
            try:
                if self.cursor is None:
                    self.cursor = await self.store.last_seq()
                    self.cursor_moved.notify()
                page = await self.store.events_after(self.cursor, limit=1000)
            except Exception:
                logger.exception("reading job events failed; trying again")
                await anyio.sleep(1.0)
                continue
            fresh = self._in_order(page)
            for event in fresh:
                for sub in list(self._subscriptions):
                    sub.offer(event)
            if fresh:
                self.cursor = fresh[-1].seq
                self.cursor_moved.notify()
            if len(fresh) < len(page):
                wait = 0.02  # a gap: its commit is near
            elif len(page) < 1000:
                wait = self.store.poll_interval
            else:
                continue
            with anyio.move_on_after(wait):
                await woken.wait()

    def _in_order(self, page: list[JobEvent]) -> list[JobEvent]:
        """The events of `page` up to the first gap in `seq`.

        Sequence numbers are taken when a row is inserted, and transactions commit in
        any order: a missing number is usually a transaction about to commit. Events
        after it wait until it shows up, or until `gap_timeout` says it never will (a
        rolled back insert), so that subscribers see every event, in order.
        """
        assert self.cursor is not None
        expected = self.cursor + 1
        for i, event in enumerate(page):
            if event.seq > expected:
                now = time.monotonic()
                if self._gap_since is None:
                    self._gap_since = now
                if now - self._gap_since < self.gap_timeout:
                    return page[:i]
            self._gap_since = None
            expected = event.seq + 1
        return page

    async def run_subscriber(
        self,
        name: str,
        callback: EventSubscriber,
        *,
        types: Collection[str] | None = None,
        kinds: Collection[EventKind] | None = None,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Feed `callback` every event from now on; its errors are logged, never raised."""
        async with self.subscribe(types=types, kinds=kinds) as events:
            task_status.started()
            async for event in events:
                try:
                    await callback(event)
                except Exception:
                    logger.exception("event subscriber %s failed on event %s", name, event.seq)
