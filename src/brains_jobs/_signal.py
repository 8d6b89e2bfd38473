"""A level-triggered wake-up that any number of waiters can share."""

from __future__ import annotations

import anyio


class Signal:
    """`notify()` wakes every coroutine currently in `wait()`; later waiters wait anew."""

    def __init__(self) -> None:
        self._event = anyio.Event()
        self._taken = False  # someone holds the current event: notify() must set it

    def notify(self) -> None:
        """Wake the current waiters (free when there are none)."""
        if self._taken:
            self._event.set()
            self._event = anyio.Event()
            self._taken = False

    def armed(self) -> anyio.Event:
        """The event the next `notify()` sets: take it before a check, wait on it after,
        and a notification that came in between is not missed.
        """
        self._taken = True
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
