"""The page the report workflow scrapes: a tiny HTTP/1.1 site on 127.0.0.1.

`fixture_site()` serves `/article` (a title and `SITE_PARAGRAPHS`) and a robots.txt that
allows it, on a free port, while its block runs. Nothing leaves the machine.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import anyio
from anyio.abc import SocketAttribute, SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

__all__ = ["SITE_PARAGRAPHS", "SITE_TITLE", "fixture_site"]

SITE_TITLE = "Field notes on background work"
SITE_PARAGRAPHS = (
    "Every application grows a queue of work that should not keep a user waiting.",
    "A typed job runtime gives each kind of work an input model, an output model and a handler.",
    "Plugins add kinds of work; one worker runs them all with retries, leases and progress.",
)

_ROBOTS = b"User-agent: *\nAllow: /\n"
_PAGE = (
    '<!doctype html><html><head><meta charset="utf-8">'
    f"<title>{SITE_TITLE}</title></head><body><main><h1>{SITE_TITLE}</h1>"
    + "".join(f"<p>{p}</p>" for p in SITE_PARAGRAPHS)
    + "</main></body></html>"
).encode()
_ROUTES = {
    "/robots.txt": ("200 OK", "text/plain; charset=utf-8", _ROBOTS),
    "/article": ("200 OK", "text/html; charset=utf-8", _PAGE),
}
_NOT_FOUND = ("404 Not Found", "text/plain", b"not found")


@contextlib.asynccontextmanager
async def fixture_site() -> AsyncIterator[str]:
    """Serve the demo's page (`/article`) and a robots.txt that allows it on 127.0.0.1,
    on a free port, while the block runs; yields the base URL (`http://127.0.0.1:PORT`).
    """
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, _answer)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            tg.cancel_scope.cancel()


async def _answer(client: SocketStream) -> None:
    """Answer one HTTP/1.1 request and close the connection."""
    async with client:
        try:
            with anyio.fail_after(10):
                head = await BufferedByteReceiveStream(client).receive_until(b"\r\n\r\n", 65536)
            method, path, _version = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            status, content_type, body = _ROUTES.get(path, _NOT_FOUND)
            await client.send(
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + (b"" if method == "HEAD" else body)
            )
        except (
            anyio.EndOfStream,
            anyio.IncompleteRead,
            anyio.DelimiterNotFound,
            anyio.BrokenResourceError,
            TimeoutError,
            OSError,
            ValueError,
        ):
            pass  # a client that hung up, dawdled or sent garbage gets no answer
