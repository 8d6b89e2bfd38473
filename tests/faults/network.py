"""A TCP proxy with a black hole: besides cutting connections (`Proxy.cut()`), it can
stop forwarding without closing anything, as a network that silently drops packets
does: statements sent through it hang until some timeout gives up on them.
"""

from __future__ import annotations

import socket
import threading

from tests.support.proxy import Proxy


class BlackHoleProxy(Proxy):
    """`Proxy`, plus `blackhole()`: every open connection stays open but nothing more
    is forwarded in either direction, and new connections are accepted and then left
    unanswered. `heal()` drops the swallowed connections and forwards new ones again.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.holed = threading.Event()
        self._swallowed: list[socket.socket] = []
        super().__init__(target)

    def blackhole(self) -> None:
        """Stop forwarding; close nothing."""
        self.holed.set()

    def heal(self) -> None:
        """Drop every connection (they lost bytes, so they are broken) and forward new
        ones again.
        """
        self.holed.clear()
        self.cut()
        with self._lock:
            swallowed, self._swallowed = self._swallowed, []
        for s in swallowed:
            s.close()
        self.start()

    def close(self) -> None:
        self.holed.clear()
        super().close()
        with self._lock:
            swallowed, self._swallowed = self._swallowed, []
        for s in swallowed:
            s.close()

    def _hold(self, client: socket.socket) -> bool:
        if not self.holed.is_set():
            return False
        with self._lock:
            self._swallowed.append(client)  # accepted, never answered
        return True

    def _drops(self) -> bool:
        return self.holed.is_set()
