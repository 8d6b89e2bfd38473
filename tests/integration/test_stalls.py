"""The stall watch: a handler that blocks the event loop longer than `stall_threshold`
is reported with its job; one that awaits is not, and neither is an idle worker.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest
from pydantic import BaseModel

import brains_jobs as bj
from brains_jobs.worker.stalls import StallWatch

pytestmark = pytest.mark.anyio


class Nap(BaseModel):
    seconds: float


@bj.job("stall-block")
async def block(ctx: bj.JobContext, inp: Nap) -> Nap:
    time.sleep(inp.seconds)  # noqa: ASYNC251 -- blocking the loop is the point
    return inp


@bj.job("stall-await")
async def wait(ctx: bj.JobContext, inp: Nap) -> Nap:
    await anyio.sleep(inp.seconds)
    return inp


async def test_a_blocking_handler_is_reported_with_its_job(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'stalls.db'}"
    async with bj.Runtime(url, jobs=[block, wait], load_entrypoints=False) as rt:
        worker = rt.worker(concurrency=2, stall_threshold=0.4)
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.run)
            await anyio.sleep(1.0)  # idle: the probes are answered
            idle = list(worker.stalls.stalls)
            awaited = await rt.enqueue(wait, Nap(seconds=1.2))
            with anyio.fail_after(10):
                await awaited.result()
            after_await = list(worker.stalls.stalls)
            with caplog.at_level(logging.ERROR, logger="brains_jobs.worker"):
                blocked = await rt.enqueue(block, Nap(seconds=1.5))
                with anyio.fail_after(10):
                    await blocked.result()
            worker.stop()
    assert idle == [] and after_await == []
    assert len(worker.stalls.stalls) == 1, worker.stalls.stalls
    seconds, job_id = worker.stalls.stalls[0]
    assert job_id == blocked.id
    assert 0.4 <= seconds < 1.5
    assert f"blocked for {seconds:.1f}s by job {blocked.id} (stall-block)" in caplog.text


async def test_an_idle_loop_gets_no_probes_and_a_busy_one_does() -> None:
    watch = StallWatch(0.08, "w")
    async with anyio.create_task_group() as tg:
        tg.start_soon(watch.run)
        await anyio.sleep(0.5)  # waiting in the selector the whole time
        idle = watch.probes
        until = time.monotonic() + 0.5
        while time.monotonic() < until:  # busy, though never blocked for long
            time.sleep(0.002)  # noqa: ASYNC251 -- work between checkpoints
            await anyio.lowlevel.checkpoint()
        busy = watch.probes
        tg.cancel_scope.cancel()
    assert idle == 0
    assert busy > 0 and watch.stalls == []
