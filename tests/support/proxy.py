"""A TCP proxy the tests control: forward 127.0.0.1:<port> to a target, and cut every
connection (or refuse new ones) on demand, to play a network that fails.
"""

from __future__ import annotations

import socket
import threading


class Proxy:
    """Forwards connections to `target` while `up`; `cut()` drops them all."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self.up = False
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def start(self) -> None:
        """Accept and forward connections."""
        self.up = True

    def cut(self) -> None:
        """Refuse new connections and drop every open one (a network that went away)."""
        self.up = False
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for a, b in pairs:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def close(self) -> None:
        """Stop for good."""
        self._closed = True
        self.cut()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._hold(client):
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

    def _hold(self, client: socket.socket) -> bool:
        """True when `client` is kept, unanswered, instead of forwarded (see subclasses)."""
        return False

    def _drops(self) -> bool:
        """True while bytes are swallowed instead of forwarded (see subclasses)."""
        return False

    def _forward(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                if self._drops():
                    continue  # swallowed: the other side never hears of it
                dst.sendall(data)
        except OSError:
            pass
        finally:
            if not self._drops():
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
