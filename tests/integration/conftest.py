from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import anyio

import brains_jobs as bj


@contextlib.asynccontextmanager
async def running_worker(rt: bj.Runtime, **options: Any) -> AsyncIterator[bj.Worker]:
    """A worker running in the background for the duration of the block."""
    options.setdefault("shutdown_timeout", 2.0)
    worker = rt.worker(**options)
    async with anyio.create_task_group() as tg:
        await tg.start(worker.run)
        try:
            yield worker
        finally:
            worker.stop()


async def wait_for_status(
    rt: bj.Runtime, job_id: int, status: bj.JobStatus, timeout: float = 10
) -> None:
    """Wait until job `job_id` reports `status` (from its event history on)."""
    with anyio.fail_after(timeout):
        async with rt.events(job_id=job_id, kinds={bj.EventKind.STATUS}, after=0) as events:
            async for event in events:
                if event.status is status:
                    return
