"""Inserting new jobs as everything above the store does it: in a `send` span with
tracing on (each job then carries the span's trace context), counted for the metrics
once the store created them (a unique-key repeat is not counted).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .metrics import COUNTS

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from .store.records import Enqueued, NewJob
    from .store.roles import Producer
    from .tracing import JobTracer


async def publish(
    store: Producer,
    jobs: Sequence[NewJob],
    *,
    tracer: JobTracer | None = None,
    connection: AsyncConnection | None = None,
) -> list[Enqueued]:
    """Insert `jobs` (see `Producer.enqueue`); with `tracer`, in a `send` span."""
    if not jobs:
        return []
    if tracer is None:
        rows = await store.enqueue(jobs, connection=connection)
    else:
        with tracer.send(jobs) as sending:
            rows = await store.enqueue(jobs, connection=connection)
            sending.sent([r.id for r in rows])
    COUNTS.add_enqueued(jobs, rows)
    return rows
