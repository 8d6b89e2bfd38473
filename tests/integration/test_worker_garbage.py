"""What a worker leaves behind: an attempt's objects are freed as soon as it ends.

A reference cycle per job (a context pointing at itself through its logger or its
artifacts) would leave every attempt for the cyclic garbage collector, whose passes
then cost a worker more than the jobs themselves.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

import brains_jobs as bj
from tests.support import jobs

pytestmark = pytest.mark.anyio


@contextmanager
def collector_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def alive(cls: type) -> int:
    return sum(1 for obj in gc.get_objects() if type(obj) is cls)


async def test_finished_attempts_leave_no_garbage_cycles(rt: bj.Runtime) -> None:
    # noop: no timeout; sleep: a timer; chain: the job's logger and a follow-up job.
    await rt.enqueue_many(jobs.noop, [{"a": i} for i in range(40)])
    await rt.enqueue_many(jobs.sleep, [{"seconds": 0.0, "ledger": False}] * 20)
    await rt.enqueue_many(jobs.chain, [{"a": i, "b": 1} for i in range(20)])
    lanes = 5
    with collector_off():
        worker = await rt.run_worker(burst=True, concurrency=lanes)
        left = alive(bj.JobContext)
    assert worker.processed == 100  # the 80 jobs and the chains' 20 follow-ups
    # A lane's last job stays referenced from the lane that ran it until the worker's
    # task group is torn down (a cancelled frame): one per lane at most, never per job.
    assert left <= lanes, f"{left} job contexts wait for the garbage collector"
