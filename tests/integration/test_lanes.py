"""A lane runs its jobs one after another in one cancel scope: cancelling the job in
flight ends that job alone, and the lane's next job runs as if nothing happened, on
each store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest
from pydantic import BaseModel

import brains_jobs as bj
from tests.integration.conftest import running_worker, wait_for_status

pytestmark = pytest.mark.anyio

S = bj.JobStatus

WORKERS: list[bj.Worker] = []  # the worker under test, for handlers that reach it


class Nap(BaseModel):
    seconds: float = 0.0


class Slept(BaseModel):
    naps: int


@bj.job("lane-nap", max_attempts=1)
async def nap(ctx: bj.JobContext, inp: Nap) -> Slept:
    """Sleeps three times (three awaits, each one a point to be cancelled at)."""
    for _ in range(3):
        await anyio.sleep(inp.seconds / 3)
    return Slept(naps=3)


@bj.job("lane-cancel-self", max_attempts=1)
async def cancel_self(ctx: bj.JobContext, inp: Nap) -> Slept:
    """Has its worker cancel it, then returns without awaiting anything more: the
    cancellation arrives as the handler ends.
    """
    await anyio.lowlevel.checkpoint()
    assert WORKERS[0].cancel_running(ctx.job_id)
    return Slept(naps=0)


@pytest.fixture
async def lrt(database_url: str, tmp_path: Path) -> AsyncIterator[bj.Runtime]:
    async with bj.Runtime(
        database_url,
        jobs=[nap, cancel_self],
        load_entrypoints=False,
        artifacts=str(tmp_path / "artifacts"),
    ) as rt:
        yield rt


async def test_a_cancel_as_the_handler_returns_leaves_the_next_job_alone(
    lrt: bj.Runtime,
) -> None:
    first = await lrt.enqueue(cancel_self, {})
    following = [await lrt.enqueue(nap, {"seconds": 0.03}) for _ in range(3)]
    async with running_worker(lrt, concurrency=1) as worker:
        WORKERS[:] = [worker]
        # The handler returned: its result stands, though its cancellation was accepted.
        assert (await first.result(timeout=10)).naps == 0
        for handle in following:
            assert (await handle.result(timeout=10)).naps == 3
    assert (await first.get()).status is S.SUCCEEDED


async def test_a_job_cancelled_in_flight_ends_alone_and_its_lane_goes_on(
    lrt: bj.Runtime,
) -> None:
    slow = await lrt.enqueue(nap, {"seconds": 30})
    async with running_worker(lrt, concurrency=1) as worker:
        await wait_for_status(lrt, slow.id, S.RUNNING)
        after = [await lrt.enqueue(nap, {"seconds": 0.03}) for _ in range(3)]
        assert await lrt.cancel(slow.id) is S.RUNNING
        with pytest.raises(bj.JobCancelled):
            await slow.result(timeout=10)
        for handle in after:
            assert (await handle.result(timeout=10)).naps == 3
        # Then a second cancellation on the same lane, in its new scope.
        again = await lrt.enqueue(nap, {"seconds": 30})
        await wait_for_status(lrt, again.id, S.RUNNING)
        assert await lrt.cancel(again.id) is S.RUNNING
        with pytest.raises(bj.JobCancelled):
            await again.result(timeout=10)
        last = await lrt.enqueue(nap, {"seconds": 0.03})
        assert (await last.result(timeout=10)).naps == 3
        assert worker.processed == 6
