"""Recurring jobs with real worker processes, on each store: three workers and a schedule
ticking every second make exactly one job per tick, also when the leader is killed.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from datetime import timedelta
from typing import Any

import anyio
import pytest

import brains_jobs as bj
from tests.acceptance.conftest import Workers, wait_until
from tests.support import jobs

pytestmark = pytest.mark.slow

S = bj.JobStatus
QUICK = {
    "BRAINS_JOBS_LEASE": "1",
    "BRAINS_JOBS_LEADER_LEASE": "1",
    "BRAINS_JOBS_RESCUE_INTERVAL": "0.3",
}


def run(fn: Any, *args: Any) -> Any:
    return anyio.run(fn, *args)


def runtime(url: str) -> bj.Runtime:
    return bj.Runtime(url, jobs=jobs.ALL, load_entrypoints=False)


async def _schedule(url: str) -> None:
    async with runtime(url) as rt:
        await rt.schedule("heartbeat", jobs.add, {"a": 1}, every=timedelta(seconds=1), missed="all")


async def _ticks(url: str) -> list[bj.Tick]:
    async with runtime(url) as rt:
        return list(reversed(await rt.schedule_ticks("heartbeat", limit=1000)))


async def _pause(url: str) -> None:
    async with runtime(url) as rt:
        await rt.pause_schedule("heartbeat")


async def _jobs(url: str) -> list[bj.Job]:
    async with runtime(url) as rt:
        return (await rt.list(limit=10_000)).jobs


async def _pending(url: str) -> int:
    async with runtime(url) as rt:
        return await rt.store.pending_count()


async def _leader(url: str) -> int | None:
    async with runtime(url) as rt:
        holder = await rt.store.leader()
    return None if holder is None else int(holder.split(":")[-2])


def test_three_workers_make_one_job_per_tick_across_a_leader_kill(
    database_url: str, workers: Workers
) -> None:
    run(_schedule, database_url)
    procs = [workers.start(database_url, "-c", "4", wait=False, **QUICK) for _ in range(3)]
    for proc in procs:
        workers.wait_ready(proc)
    wait_until(lambda: len(run(_ticks, database_url)) >= 3, 30, "three ticks")
    pids = {p.pid for p in procs}
    wait_until(lambda: run(_leader, database_url) in pids, 10, "a leader")
    leader = run(_leader, database_url)
    victim = next(p for p in procs if p.pid == leader)
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    killed_at = time.time()
    wait_until(lambda: run(_leader, database_url) not in (None, leader), 10, "another leader")
    wait_until(
        lambda: run(_ticks, database_url)[-1].tick.timestamp() > killed_at + 2,
        20,
        "ticks after the kill",
    )
    run(_pause, database_url)
    time.sleep(1.5)  # the pause reaches the leader; later ticks are skipped
    wait_until(lambda: run(_pending, database_url) == 0, 30, "the jobs to run")
    for proc in procs:
        if proc is not victim:
            assert workers.stop(proc) == 0

    found = [t for t in run(_ticks, database_url) if t.outcome != "skipped"]
    assert {t.outcome for t in found} == {"enqueued"}, [t for t in found if t.detail]
    seconds = [int(t.tick.timestamp()) for t in found]
    assert seconds == list(range(seconds[0], seconds[0] + len(seconds))), "a tick was lost"
    assert len(found) >= 6
    scheduled = [j for j in run(_jobs, database_url) if j.unique_key]
    per_key = Counter(j.unique_key for j in scheduled)
    assert set(per_key.values()) == {1}
    assert {t.job_id for t in found} == {j.id for j in scheduled}
    # Jobs that the killed worker was running went back to the queue and ran again.
    assert {j.status for j in scheduled} == {S.SUCCEEDED}
