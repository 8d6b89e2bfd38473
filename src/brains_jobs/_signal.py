"""A level-triggered wake-up that any number of waiters can share.

Its events are asyncio's own: an `anyio.Event` costs three to nine times as much to make
(it looks up the running backend each time), and a worker makes one per wake-up, on the
way from a job's notification to its start. Every store runs on asyncio (asyncpg, aiosqlite).
"""

from __future__ import annotations

import asyncio

import anyio


class Signal:
    """`notify()` wakes every coroutine currently in `wait()`; later waiters wait anew."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._taken = False  # someone holds the current event: notify() must set it
        self._also: list[asyncio.Event] = []  # set by the next notify() as well

    def notify(self) -> None:
        """Wake the current waiters (free when there are none)."""
        if self._taken:
            self._event.set()
            for event in self._also:
                event.set()
            self._event = asyncio.Event()
            self._taken = False
            self._also = []

    def armed(self, also: asyncio.Event | None = None) -> asyncio.Event:
        """The event the next `notify()` sets: take it before a check, wait on it after,
        and a notification that came in between is not missed.

        The next `notify()` sets `also` too: one event armed on several signals wakes
        its waiter on the first of them. Set it when done waiting (the signals forget
        events that are set).
        """
        self._taken = True
        if also is not None:
            self._also = [event for event in self._also if not event.is_set()]
            self._also.append(also)
        return self._event

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait for the next `notify()`; False when `timeout` seconds passed first."""
        self._taken = True
        event = self._event
        if timeout is None:
            await event.wait()
            return True
        with anyio.move_on_after(timeout):
            await event.wait()
            return True
        return False
