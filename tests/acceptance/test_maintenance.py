"""Maintenance with real worker processes, on each store: leader failover, crash
accounting and poison pills, retention pruning, the workers registry, waiting for the
database.
"""

from __future__ import annotations

import signal
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import anyio
import pytest

import brains_jobs as bj
from tests.acceptance.conftest import Workers, read_ledger, wait_until
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


def runtime(url: str, **options: Any) -> bj.Runtime:
    return bj.Runtime(url, jobs=jobs.ALL, load_entrypoints=False, **options)


async def _enqueue(url: str, definition: bj.JobDefinition, inputs: list[dict]) -> list[int]:
    async with runtime(url) as rt:
        return [h.id for h in await rt.enqueue_many(definition, inputs)]


async def _jobs(url: str) -> dict[int, bj.Job]:
    async with runtime(url) as rt:
        return {j.id: j for j in (await rt.list(limit=10_000)).jobs}


async def _pending(url: str) -> int:
    async with runtime(url) as rt:
        return await rt.store.pending_count()


async def _leader(url: str) -> str | None:
    async with runtime(url) as rt:
        return await rt.store.leader()


async def _workers(url: str) -> list[bj.WorkerInfo]:
    async with runtime(url) as rt:
        return await rt.workers()


def _pid(holder: str | None) -> int | None:
    return None if holder is None else int(holder.split(":")[-2])


def test_another_process_leads_within_a_lease_when_the_leader_is_killed(
    database_url: str, workers: Workers
) -> None:
    procs = [workers.start(database_url, **QUICK) for _ in range(2)]
    wait_until(lambda: _pid(run(_leader, database_url)) is not None, 20, "a leader")
    leader = _pid(run(_leader, database_url))
    assert leader in {p.pid for p in procs}
    victim = next(p for p in procs if p.pid == leader)
    survivor = next(p for p in procs if p.pid != leader)
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    killed_at = time.monotonic()
    wait_until(lambda: _pid(run(_leader, database_url)) == survivor.pid, 10, "a new leader")
    # One lease (1s) plus a campaign period and the polling of this test.
    assert time.monotonic() - killed_at < 3.0
    assert workers.stop(survivor) == 0


def test_a_crash_costs_no_attempt_to_jobs_whose_handler_had_not_started(
    database_url: str, workers: Workers, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.txt"
    ids = run(_enqueue, database_url, jobs.sleep, [{"seconds": 2.0} for _ in range(40)])
    extra = {**QUICK, "BRAINS_JOBS_TEST_LEDGER": str(ledger)}
    first = workers.start(database_url, "-c", "2", "--prefetch", "30", **extra)
    wait_until(lambda: len(read_ledger(ledger)) >= 2, 30, "two jobs to start")
    time.sleep(1.0)  # their starts are recorded; 30 more jobs wait in the worker's buffer
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    started = {job_id for job_id, _, _, _ in read_ledger(ledger)}
    second = workers.start(database_url, "-c", "20", **extra)
    wait_until(lambda: run(_pending, database_url) == 0, 60, "the queue to drain", interval=0.3)
    assert workers.stop(second) == 0
    final = run(_jobs, database_url)
    assert {final[i].status for i in ids} == {S.SUCCEEDED}
    starts: dict[int, list[int]] = defaultdict(list)
    for job_id, attempt, _, what in read_ledger(ledger):
        if what == "start":
            starts[job_id].append(attempt)
    for job_id in ids:
        job = final[job_id]
        assert len(starts[job_id]) == len(set(starts[job_id])), "an attempt number ran twice"
        assert max(starts[job_id]) == job.attempts
        if job_id in started:  # running when its worker died: the crash is its attempt
            assert [e.type for e in job.errors] == ["LeaseExpired"] and job.attempts == 2
            assert job.crashes == 1
        else:  # it waited in the dead worker's buffer (or was never claimed by it)
            assert job.errors == [] and job.crashes == 0
            assert job.max_attempts - job.attempts == jobs.sleep.max_attempts - 1
    assert len(started) == 2


def test_poison_pills_are_quarantined_and_every_other_job_succeeds(
    database_url: str, workers: Workers, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.txt"
    normal = run(_enqueue, database_url, jobs.poison, [{"seconds": 0.02} for _ in range(500)])
    pills = run(_enqueue, database_url, jobs.poison, [{"crash": True} for _ in range(5)])
    extra = {**QUICK, "BRAINS_JOBS_TEST_LEDGER": str(ledger)}
    procs = [workers.start(database_url, "-c", "5", wait=False, **extra) for _ in range(3)]
    restarts = 0
    deadline = time.monotonic() + 240
    while run(_pending, database_url) != 0:
        assert time.monotonic() < deadline, "the queue did not drain"
        for i, proc in enumerate(procs):
            if proc.poll() is not None:  # killed by a poison pill: start another
                restarts += 1
                procs[i] = workers.start(database_url, "-c", "5", wait=False, **extra)
        time.sleep(0.2)
    for proc in procs:
        workers.wait_ready(proc)
        assert workers.stop(proc) == 0
    final = run(_jobs, database_url)
    assert {final[i].status for i in normal} == {S.SUCCEEDED}, "an innocent job was punished"
    for job_id in pills:
        job = final[job_id]
        assert job.status is S.FAILED and job.crashes == jobs.poison.max_crashes
        assert job.last_error is not None and job.last_error.type == "WorkerCrashed"
    # Each pill killed a worker once before its start was known, then max_crashes times.
    assert restarts >= len(pills) * jobs.poison.max_crashes
    starts: dict[int, list[int]] = defaultdict(list)
    for job_id, attempt, _, what in read_ledger(ledger):
        if what == "start":
            starts[job_id].append(attempt)
    assert all(len(a) == len(set(a)) for a in starts.values()), "an attempt number ran twice"


def test_the_leader_prunes_finished_jobs_while_workers_run(
    database_url: str, workers: Workers, tmp_path: Path
) -> None:
    extra = {
        **QUICK,
        "BRAINS_JOBS_RETENTION_SUCCEEDED": "1s",
        "BRAINS_JOBS_RETENTION_FAILED": "never",
        "BRAINS_JOBS_PRUNE_INTERVAL": "0.5s",
    }
    done = run(_enqueue, database_url, jobs.add, [{"a": i} for i in range(50)])
    failed = run(_enqueue, database_url, jobs.permanent, [{"text": "x"}])
    proc = workers.start(database_url, **extra)
    wait_until(lambda: run(_pending, database_url) == 0, 30, "the jobs to run")
    wait_until(
        lambda: not set(done) & set(run(_jobs, database_url)), 20, "the succeeded jobs to go"
    )
    assert set(run(_jobs, database_url)) == set(failed)  # failed jobs are kept forever here
    assert proc.poll() is None and workers.stop(proc) == 0


def test_the_workers_registry_lists_live_workers_and_reaps_dead_ones(
    database_url: str, workers: Workers
) -> None:
    procs = [workers.start(database_url, "-c", "3", **QUICK) for _ in range(2)]
    wait_until(lambda: len(run(_workers, database_url)) == 2, 20, "both workers to register")
    listed = {w.pid: w for w in run(_workers, database_url)}
    assert set(listed) == {p.pid for p in procs}
    assert all(w.concurrency == 3 and "add" in w.types for w in listed.values())
    procs[0].send_signal(signal.SIGKILL)
    procs[0].wait(10)
    # Dead workers drop out of the live list once silent, then out of the table.
    wait_until(
        lambda: [w.pid for w in run(_workers, database_url)] == [procs[1].pid], 30, "the reap"
    )
    assert workers.stop(procs[1]) == 0
    assert run(_workers, database_url) == []  # a worker removes itself when it stops


def test_a_worker_waits_for_its_database(tmp_path: Path, workers: Workers) -> None:
    from tests.conftest import PG_DSN, require_postgres
    from tests.support.proxy import Proxy

    require_postgres()
    proxy = Proxy(("127.0.0.1", 5432))
    try:
        schema = f"bj_wait_{int(time.time() * 1000) % 10**9}"
        url = (
            PG_DSN.replace("postgresql://", "postgresql+asyncpg://", 1).replace(
                ":5432/", f":{proxy.port}/"
            )
            + f"?schema={schema}"
        )
        proc = workers.start(url, "--wait-for-db", "60s", wait=False)
        wait_until(lambda: "waiting for the database" in workers.logs(), 20, "the wait")
        assert proc.poll() is None
        proxy.start()
        workers.wait_ready(proc)
        assert workers.stop(proc) == 0
    finally:
        proxy.close()
        import asyncpg

        async def drop() -> None:
            conn = await asyncpg.connect(PG_DSN)
            try:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            finally:
                await conn.close()

        anyio.run(drop)
