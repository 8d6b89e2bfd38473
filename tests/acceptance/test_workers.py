"""Worker processes: SIGKILL mid-job, two processes on one database, SIGTERM drain."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest

import brains_jobs as bj
from tests.acceptance.conftest import Workers, done_counts, read_ledger, wait_until
from tests.support import jobs

pytestmark = pytest.mark.slow


def run(fn: Any, *args: Any) -> Any:
    return anyio.run(fn, *args)


async def _enqueue(url: str, definition: bj.JobDefinition, inputs: list[dict]) -> list[int]:
    async with bj.Runtime(url, jobs=jobs.ALL, load_entrypoints=False) as rt:
        return [h.id for h in await rt.enqueue_many(definition, inputs)]


async def _jobs(url: str, ids: list[int]) -> list[bj.Job]:
    async with bj.Runtime(url, load_entrypoints=False) as rt:
        return [await rt.get(i) for i in ids]


async def _pending(url: str) -> int:
    async with bj.Runtime(url, load_entrypoints=False) as rt:
        return await rt.store.pending_count()


def test_killed_worker_job_is_retried_after_its_lease_and_succeeds_once(
    database_url: str, workers: Workers, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.txt"
    (job_id,) = run(_enqueue, database_url, jobs.sleep, [{"seconds": 2.0}])
    first = workers.start(
        database_url, BRAINS_JOBS_LEASE="1.0", BRAINS_JOBS_TEST_LEDGER=str(ledger)
    )
    wait_until(lambda: len(read_ledger(ledger)) >= 1, 30, "the job to start")
    time.sleep(0.8)  # long enough for the worker to record that the handler started
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    (job,) = run(_jobs, database_url, [job_id])
    assert job.status is bj.JobStatus.RUNNING  # nothing could clean up after kill -9
    second = workers.start(
        database_url, BRAINS_JOBS_LEASE="1.0", BRAINS_JOBS_TEST_LEDGER=str(ledger)
    )
    wait_until(lambda: done_counts(ledger)[job_id] == 1, 30, "the retried job to finish")
    wait_until(lambda: run(_jobs, database_url, [job_id])[0].status.is_final, 10, "completion")
    assert workers.stop(second) == 0
    (job,) = run(_jobs, database_url, [job_id])
    assert job.status is bj.JobStatus.SUCCEEDED and job.attempts == 2
    assert [e.type for e in job.errors] == ["LeaseExpired"]
    rows = read_ledger(ledger)
    assert [(a, w) for _, a, _, w in rows] == [(1, "start"), (2, "start"), (2, "done")]
    assert rows[0][2] == first.pid and rows[2][2] == second.pid


def test_two_worker_processes_drain_2000_jobs_none_lost_none_twice(
    database_url: str, workers: Workers, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.txt"
    ids = run(_enqueue, database_url, jobs.sleep, [{"seconds": 0.01} for _ in range(2000)])
    procs = [
        workers.start(database_url, "-c", "20", wait=False, BRAINS_JOBS_TEST_LEDGER=str(ledger))
        for _ in range(2)
    ]
    for proc in procs:
        workers.wait_ready(proc)
    wait_until(lambda: run(_pending, database_url) == 0, 120, "the queue to drain", interval=0.5)
    assert [workers.stop(p) for p in procs] == [0, 0]
    done = done_counts(ledger)
    assert set(done) == set(ids)
    assert max(done.values()) == 1, "a job ran twice"
    starts = Counter(job_id for job_id, _, _, what in read_ledger(ledger) if what == "start")
    assert max(starts.values()) == 1
    by_pid = Counter(pid for _, _, pid, what in read_ledger(ledger) if what == "done")
    assert set(by_pid) == {p.pid for p in procs}, "both processes took work"
    finished = run(_jobs, database_url, ids)
    assert {j.status for j in finished} == {bj.JobStatus.SUCCEEDED}
    assert "database is locked" not in workers.logs()


def test_sigterm_lets_running_jobs_finish(
    database_url: str, workers: Workers, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.txt"
    (job_id,) = run(_enqueue, database_url, jobs.sleep, [{"seconds": 1.0}])
    proc = workers.start(database_url, BRAINS_JOBS_TEST_LEDGER=str(ledger))
    wait_until(lambda: len(read_ledger(ledger)) >= 1, 30, "the job to start")
    assert workers.stop(proc) == 0
    (job,) = run(_jobs, database_url, [job_id])
    assert job.status is bj.JobStatus.SUCCEEDED and job.attempts == 1
    assert "finishing running jobs" in workers.logs()


def test_sigterm_after_the_grace_period_puts_jobs_back(
    database_url: str, workers: Workers, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.txt"
    (job_id,) = run(_enqueue, database_url, jobs.sleep, [{"seconds": 60}])
    proc = workers.start(
        database_url, "--shutdown-timeout", "0.5", BRAINS_JOBS_TEST_LEDGER=str(ledger)
    )
    wait_until(lambda: len(read_ledger(ledger)) >= 1, 30, "the job to start")
    assert workers.stop(proc) == 0
    (job,) = run(_jobs, database_url, [job_id])
    assert job.status is bj.JobStatus.QUEUED
    assert (job.attempts, job.max_attempts) == (1, jobs.sleep.max_attempts + 1)
