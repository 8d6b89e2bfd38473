"""`GET /metrics`: Prometheus metrics of the API process (jobs it enqueued) and the
gauges of the leader's last queue snapshot (see `brains_jobs.observability.prometheus`).

A scrape reads one snapshot row; it never counts jobs. Any signed-in role may scrape
(Prometheus sends the token with `authorization: {credentials_file: ...}`).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from ..observability.prometheus import CONTENT_TYPE, render
from .auth import Reader
from .dependencies import RuntimeDep
from .errors import ERROR_RESPONSES

router = APIRouter(tags=["system"], responses=ERROR_RESPONSES)


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    summary="Prometheus metrics",
)
async def metrics(rt: RuntimeDep, principal: Reader) -> PlainTextResponse:
    """Counters and histograms of this process, and the queue gauges of the leader's
    last snapshot, in the Prometheus text format.
    """
    return PlainTextResponse(await render(rt.store), media_type=CONTENT_TYPE)
