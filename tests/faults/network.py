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

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.holed.is_set():
                with self._lock:
                    self._swallowed.append(client)  # accepted, never answered
                continue
            if not self.up:
                client.close()
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._pairs.append((client, server))
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._forward, args=(src, dst), daemon=True).start()

    def _forward(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                if self.holed.is_set():
                    continue  # swallowed: the other side never hears of it
                dst.sendall(data)
        except OSError:
            pass
        finally:
            if not self.holed.is_set():
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
