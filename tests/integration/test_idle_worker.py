"""An idle worker looks at the queue once per poll interval with a read; it claims only
when a job is due or a wake-up came.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import brains_jobs as bj
from tests.support import jobs

pytestmark = pytest.mark.anyio


async def test_an_idle_worker_reads_instead_of_claiming(rt: bj.Runtime) -> None:
    store: Any = rt.store
    claim = store.claim
    claims = 0

    async def counted(**kwargs: Any) -> Any:
        nonlocal claims
        claims += 1
        return await claim(**kwargs)

    store.claim = counted
    store.poll_interval = 0.02
    try:
        async with anyio.create_task_group() as tg:
            worker = rt.worker(concurrency=2)
            tg.start_soon(worker.run)
            await anyio.sleep(1.0)  # its first looks, and the wake-ups of its start
            settled = claims
            await anyio.sleep(0.5)  # 25 poll intervals on an empty queue
            idle_claims = claims - settled
            handle = await rt.enqueue(jobs.add, {"a": 1, "b": 2})
            with anyio.fail_after(10):
                result = await handle.result()
            worker.stop()
    finally:
        store.claim = claim
    # One late wake-up of the start may still come (a look: up to four claims); a claim
    # per interval would be over fifty.
    assert idle_claims <= 4, f"{idle_claims} claims in 25 idle poll intervals"
    assert result.total == 3
