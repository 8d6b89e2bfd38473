"""PostgreSQL under stress: workers killed with SIGKILL, the server restarted, subscribers
killed and resumed. Nothing is lost, nothing runs twice at once, attempts are counted.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import anyio
import pytest

import brains_jobs as bj
from tests.acceptance.conftest import ROOT, Workers, env, read_ledger, wait_until
from tests.conftest import pg_url
from tests.support import jobs

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.serial]  # restarts the server


@pytest.fixture
def url(pg_schema: str) -> str:
    return pg_url(pg_schema)


async def _enqueue(url: str, n: int, seconds: float) -> list[int]:
    async with bj.Runtime(url, jobs=jobs.ALL, load_entrypoints=False) as rt:
        ids: list[int] = []
        for start in range(0, n, 5000):
            batch = [{"seconds": seconds} for _ in range(start, min(n, start + 5000))]
            ids += [h.id for h in await rt.enqueue_many(jobs.sleep, batch)]
        return ids


async def _pending(url: str) -> int:
    async with bj.Runtime(url, load_entrypoints=False, create_schema=False) as rt:
        return await rt.store.pending_count()


async def _final(url: str, ids: list[int]) -> dict[int, bj.Job]:
    async with bj.Runtime(url, load_entrypoints=False, create_schema=False) as rt:
        result: dict[int, bj.Job] = {}
        cursor = None
        while True:
            page = await rt.list(type="sleep", limit=5000, cursor=cursor)
            result.update({j.id: j for j in page.jobs})
            if page.next_cursor is None:
                return result
            cursor = page.next_cursor


def pending(url: str) -> int:
    try:
        return anyio.run(_pending, url)
    except bj.StoreError:
        return -1  # the server is restarting


def check_ledger(ledger: Path, ids: list[int], final: dict[int, bj.Job]) -> None:
    """Every job succeeded; no attempt ran twice; attempts match the ledger."""
    starts: dict[int, list[int]] = defaultdict(list)
    done: dict[int, list[int]] = defaultdict(list)
    for job_id, attempt, _pid, what in read_ledger(ledger):
        (starts if what == "start" else done)[job_id].append(attempt)
    assert set(final) == set(ids)
    assert {j.status for j in final.values()} == {bj.JobStatus.SUCCEEDED}
    assert set(done) == set(ids), "a job never completed its handler"
    for job_id in ids:
        assert len(starts[job_id]) == len(set(starts[job_id])), (
            f"job {job_id}: an attempt ran twice"
        )
        assert max(starts[job_id]) == final[job_id].attempts, f"job {job_id}: attempts not counted"
        assert final[job_id].output["attempt"] == final[job_id].attempts
        assert final[job_id].attempts in done[job_id], f"job {job_id}: the stored result's run"


def test_four_workers_drain_20000_jobs_while_one_is_killed_at_each_fifth(
    url: str, workers: Workers, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.txt"
    ids = anyio.run(_enqueue, url, 20_000, 0.01)
    extra = {"BRAINS_JOBS_LEASE": "2", "BRAINS_JOBS_TEST_LEDGER": str(ledger)}
    alive = [workers.start(url, "-c", "20", **extra) for _ in range(4)]
    # A worker is killed as the jobs left pass each fifth of them: kills land in the
    # middle of the drain however fast the machine drains (a fixed period may outlast it).
    marks = [len(ids) * fifth // 5 for fifth in (4, 3, 2, 1)]
    kills = 0
    deadline = time.monotonic() + 300
    rng = random.Random(7)
    while (left := pending(url)) != 0:
        assert time.monotonic() < deadline, "the drain did not finish"
        if left < 0 or not marks or left > marks[0]:  # -1: the server is restarting
            time.sleep(0.05)
            continue
        while marks and left <= marks[0]:
            marks.pop(0)
        victim = alive.pop(rng.randrange(len(alive)))
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        kills += 1
        alive.append(workers.start(url, "-c", "20", **extra))
    assert kills >= 2, f"{kills} kill(s): the drain outran the checks of what was left"
    assert [workers.stop(p) for p in alive] == [0] * len(alive)
    final = anyio.run(_final, url, ids)
    check_ledger(ledger, ids, final)
    retried = [j for j in final.values() if j.attempts > 1]
    assert retried, "no job was interrupted by the kills"
    # An attempt ends in error only by a kill (its lease expired) or, when the machine is
    # too busy for a worker to renew in time, by the worker fencing itself off.
    kinds = Counter(e.type for j in retried for e in j.errors)
    assert set(kinds) <= {"LeaseExpired", "LeaseLost"}, kinds


def _restart_postgres() -> None:
    version = sorted(os.listdir("/etc/postgresql"))[0]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart", "-m", "fast"],
        check=True,
        timeout=120,
    )


def test_postgres_restart_mid_drain(url: str, workers: Workers, tmp_path: Path) -> None:
    if not os.path.isdir("/etc/postgresql"):
        pytest.skip("needs a local PostgreSQL cluster managed by pg_ctlcluster")
    ledger = tmp_path / "ledger.txt"
    ids = anyio.run(_enqueue, url, 5_000, 0.01)
    extra = {"BRAINS_JOBS_LEASE": "5", "BRAINS_JOBS_TEST_LEDGER": str(ledger)}
    procs = [workers.start(url, "-c", "20", **extra) for _ in range(2)]
    wait_until(lambda: len(read_ledger(ledger)) > 500, 60, "the drain to get going")
    restarter = threading.Thread(target=_restart_postgres)
    restarter.start()
    restarter.join(150)
    wait_until(lambda: pending(url) == 0, 180, "the drain to finish after the restart", interval=1)
    assert all(p.poll() is None for p in procs), "a worker died with the server"
    assert [workers.stop(p) for p in procs] == [0, 0]
    final = anyio.run(_final, url, ids)
    check_ledger(ledger, ids, final)
    assert "Traceback" not in workers.logs() or "StoreError" in workers.logs()


def test_subscriber_process_resumes_without_gaps(
    url: str, workers: Workers, tmp_path: Path
) -> None:
    anyio.run(_enqueue, url, 0, 0)  # create the schema
    cmd = [sys.executable, "-m", "tests.support.subscriber", url]

    def start(after: int) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [*cmd, "--after", str(after)], stdout=subprocess.PIPE, text=True, env=env(), cwd=ROOT
        )
        assert proc.stdout is not None
        assert json.loads(proc.stdout.readline()) == {"ready": True}
        return proc

    def read_some(proc: subprocess.Popen[str], n: int) -> list[dict]:
        assert proc.stdout is not None
        return [json.loads(proc.stdout.readline()) for _ in range(n)]

    first = start(0)
    ids = anyio.run(_enqueue, url, 50, 0.05)
    workers.start(url, "-c", "5")
    seen = read_some(first, 60)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    first.stdout.close()  # type: ignore[union-attr]
    second = start(seen[-1]["seq"])
    try:
        wait_until(lambda: pending(url) == 0, 60, "the jobs to finish")

        async def total_events() -> list[int]:
            async with bj.Runtime(url, load_entrypoints=False, create_schema=False) as rt:
                return [e.seq for e in await rt.store.events_after(0, limit=100_000)]

        all_seqs = anyio.run(total_events)
        rest = read_some(second, len(all_seqs) - len(seen))
    finally:
        second.kill()
        second.wait(10)
        second.stdout.close()  # type: ignore[union-attr]
    got = [e["seq"] for e in seen + rest]
    assert got == all_seqs, "events were lost or repeated across the restart"
    by_job: dict[int, list[dict]] = defaultdict(list)
    for e in seen + rest:
        by_job[e["job_id"]].append(e)
    for job_id in ids:
        statuses = [e["status"] for e in by_job[job_id] if e["kind"] == "status"]
        assert statuses == ["queued", "running", "succeeded"]
        progress = [e["progress"] for e in by_job[job_id] if e["kind"] == "progress"]
        assert progress == [0.2, 0.4, 0.6, 0.8, 1.0]
