"""`GET /api/events`: job events as server-sent events.

Each event is one `data:` line of JSON (a `JobEvent`) whose `id:` is its `seq`. A client
that reconnects with `Last-Event-ID: <seq>` (browsers' `EventSource` does so by itself)
gets every matching event after that one, read back from the events table, then the live
ones: nothing missed, nothing repeated, whichever process wrote them. Without it the
stream starts from now (or after `?after=<seq>`). A comment line `: ping` is sent when no
event came for `heartbeat` seconds, so that proxies keep the connection open.

The stream ends when the app's `state.closing` becomes true (`brains-jobs serve` sets it
when it is told to stop): servers wait for open connections before they stop.

A subscription that falls behind is not told to the client: the stream reopens its
subscription after the last event it forwarded, which reads the missed events back.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

import anyio
from anyio import CancelScope
from anyio.streams.memory import MemoryObjectSendStream
from fastapi import APIRouter, Header, Query, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..exceptions import InvalidJobOption, JobNotFound
from ..models import EventKind, JobEvent
from ..runtime import Runtime
from .auth import Principal, Reader
from .dependencies import MAX_ID, RuntimeDep, visible_job
from .errors import ERROR_RESPONSES

router = APIRouter(prefix="/api", tags=["events"], responses=ERROR_RESPONSES)

_OWNERS_CACHED = 10_000


class EventStream(Response):
    """An endless `text/event-stream` response of the matching job events."""

    media_type = "text/event-stream"

    def __init__(
        self,
        rt: Runtime,
        principal: Principal,
        *,
        after: int | None,
        job_id: int | None,
        types: list[str] | None,
        kinds: list[EventKind] | None,
        owner: str | None,
        heartbeat: float,
    ) -> None:
        super().__init__(
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            media_type=self.media_type,
        )
        # An endless body has no length.
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self.rt = rt
        self.principal = principal
        self.after = after
        self.job_id = job_id
        self.types = types
        self.kinds = kinds
        self.owner = owner
        self.heartbeat = heartbeat
        self._owners: dict[int, str | None] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.after is None:
            self.after = await self.rt.store.last_seq()
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        out, events = anyio.create_memory_object_stream[JobEvent](100)
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._pump, out)
            tg.start_soon(_watch_disconnect, receive, tg.cancel_scope)
            tg.start_soon(_watch_closing, scope["app"], tg.cancel_scope)
            try:
                await self._write(send, events)
            except OSError:
                pass  # the client went away
            tg.cancel_scope.cancel()
        with contextlib.suppress(OSError):
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _write(self, send: Send, events: Any) -> None:
        await _chunk(send, b"retry: 1000\n\n")
        async with events:
            while True:
                event = None
                with anyio.move_on_after(self.heartbeat):
                    event = await events.receive()
                if event is None:
                    await _chunk(send, b": ping\n\n")
                    continue
                # The events already waiting go out in the same chunk (one write, not many).
                batch = [event]
                while len(batch) < _BATCH:
                    try:
                        batch.append(events.receive_nowait())
                    except anyio.WouldBlock:
                        break
                await _chunk(
                    send,
                    "".join(
                        f"id: {e.seq}\ndata: {e.model_dump_json()}\n\n" for e in batch
                    ).encode(),
                )

    async def _pump(self, out: MemoryObjectSendStream[JobEvent]) -> None:
        """Forward matching events in `seq` order; reopen after a drop, from the last."""
        assert self.after is not None
        last = self.after
        async with out:
            while True:
                async with self.rt.events(
                    job_id=self.job_id,
                    types=self.types,
                    kinds=self.kinds,
                    after=last,
                    buffer=_BUFFER,
                ) as subscription:
                    async for event in subscription:
                        if event.kind is EventKind.DROPPED:
                            break
                        if event.seq <= last:
                            continue
                        last = event.seq
                        if await self._visible(event):
                            await out.send(event)

    async def _visible(self, event: JobEvent) -> bool:
        if self.principal.sees_all and self.owner is None:
            return True
        if event.job_id not in self._owners:
            if len(self._owners) >= _OWNERS_CACHED:
                self._owners.clear()
            try:
                self._owners[event.job_id] = (await self.rt.get(event.job_id)).owner
            except JobNotFound:
                self._owners[event.job_id] = None
        owner = self._owners[event.job_id]
        if not self.principal.sees_all and owner != self.principal.user:
            return False
        return self.owner is None or owner == self.owner


_BATCH = 200  # events sent in one chunk at most
# Events a stream holds while its client reads: a burst (a worker writes thousands a
# second) fits, instead of overflowing and being read back from the table.
_BUFFER = 10_000


async def _chunk(send: Send, body: bytes) -> None:
    await send({"type": "http.response.body", "body": body, "more_body": True})


async def _watch_disconnect(receive: Receive, scope: CancelScope) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            scope.cancel()
            return


async def _watch_closing(app: Any, scope: CancelScope) -> None:
    # A server that shuts down waits for its connections: end the stream when it says
    # it is closing (`app.state.closing`), so that clients reconnect to another one.
    state = getattr(app, "state", None)
    while not getattr(state, "closing", False):  # noqa: ASYNC110 -- set by a signal handler
        await anyio.sleep(0.25)
    scope.cancel()


@router.get(
    "/events",
    response_class=EventStream,
    status_code=200,
    summary="Job events as server-sent events",
    responses={200: {"content": {"text/event-stream": {}}, "description": "the events"}},
)
async def events(
    request: Request,
    rt: RuntimeDep,
    principal: Reader,
    job_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    type: Annotated[list[str] | None, Query(description="job types; repeatable")] = None,
    kind: Annotated[list[EventKind] | None, Query(description="event kinds; repeatable")] = None,
    owner: Annotated[str | None, Query(max_length=256)] = None,
    after: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> EventStream:
    """Events as they happen, each with `id: <seq>`; resume after a `seq` with the
    `Last-Event-ID` header (or `?after=`), without gap or repeat. Filters: `job_id`,
    `type`, `kind` (repeatable), `owner`. A `user` gets the events of its own jobs.
    """
    if last_event_id is not None:
        try:
            after = int(last_event_id.strip())
        except ValueError:
            raise InvalidJobOption("Last-Event-ID", "expected the seq of an event") from None
        if not 0 <= after <= MAX_ID:
            raise InvalidJobOption("Last-Event-ID", f"must be from 0 to {MAX_ID}")
    if job_id is not None:
        await visible_job(rt, principal, job_id)
    if kind is not None and EventKind.DROPPED in kind:
        kind = [k for k in kind if k is not EventKind.DROPPED]
    return EventStream(
        rt,
        principal,
        after=after,
        job_id=job_id,
        types=type,
        kinds=kind,
        owner=owner,
        heartbeat=request.app.state.heartbeat,
    )
