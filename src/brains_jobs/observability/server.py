"""The worker's metrics endpoint: a tiny HTTP server in the worker process that answers
`GET /metrics` (`brains-jobs worker --metrics-port N`, `BRAINS_JOBS_METRICS_PORT`).

It runs in the worker's event loop, in a task group of its own (no thread): each scrape
renders this process's counts and reads the leader's last queue snapshot (one row).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import anyio
from anyio.abc import SocketStream, TaskStatus

from ..exceptions import ConfigurationError
from .prometheus import CONTENT_TYPE, render

if TYPE_CHECKING:
    from ..store.snapshots import Snapshots

logger = logging.getLogger("brains_jobs.metrics")

MAX_REQUEST = 8192  # bytes of request head read at most
READ_TIMEOUT = 10.0


async def serve_metrics(
    store: Snapshots,
    port: int,
    host: str = "0.0.0.0",  # scraped from other machines, like any exporter
    *,
    task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `/metrics` on `host:port` until cancelled; reports the port it listens on."""
    try:
        import prometheus_client  # noqa: F401 -- fail at start, not at the first scrape
    except ImportError:
        raise ConfigurationError(
            "serving metrics needs prometheus-client: pip install 'brains-jobs[web]'"
        ) from None
    try:
        listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
    except OSError as exc:
        raise ConfigurationError(f"cannot serve metrics on {host}:{port}: {exc}") from None
    bound = listener.extra(anyio.abc.SocketAttribute.local_port)
    logger.info("metrics at http://%s:%d/metrics", host, bound)

    async def handle(stream: SocketStream) -> None:
        async with stream:
            try:
                await _answer(stream, store)
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                pass  # the scraper went away

    async with listener:
        task_status.started(bound)
        await listener.serve(handle)


async def _answer(stream: SocketStream, store: Snapshots) -> None:
    head = b""
    with anyio.move_on_after(READ_TIMEOUT):
        while b"\r\n\r\n" not in head and len(head) < MAX_REQUEST:
            head += await stream.receive(4096)
    parts = head.split(b"\r\n", 1)[0].split()
    if len(parts) < 2 or parts[0] not in (b"GET", b"HEAD"):
        await _send(stream, 405, b"only GET /metrics\n", "text/plain")
        return
    if parts[1].split(b"?", 1)[0] != b"/metrics":
        await _send(stream, 404, b"see /metrics\n", "text/plain")
        return
    try:
        body = await render(store)
    except Exception as exc:
        logger.warning("metrics: the queue snapshot could not be read: %s", exc)
        # The reason stays in the log: this port answers anyone who can reach it.
        await _send(stream, 503, b"the database did not answer\n", "text/plain")
        return
    await _send(stream, 200, body, CONTENT_TYPE, head_only=parts[0] == b"HEAD")


async def _send(
    stream: SocketStream, status: int, body: bytes, content_type: str, *, head_only: bool = False
) -> None:
    reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Unavailable"}[status]
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    await stream.send(head if head_only else head + body)
