"""Limits across worker processes, on each store: a concurrency limit is never exceeded
(from a ledger of start and end times), a rate is never exceeded, and a throttle one
worker meets holds the key for the others.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import pytest

import brains_jobs as bj
from tests.acceptance.conftest import Workers, wait_until
from tests.support import jobs

pytestmark = pytest.mark.slow


def run(fn: Any, *args: Any) -> Any:
    return anyio.run(fn, *args)


async def _enqueue(url: str, inputs: list[dict[str, Any]]) -> list[int]:
    async with bj.Runtime(url, jobs=jobs.ALL, load_entrypoints=False) as rt:
        return [h.id for h in await rt.enqueue_many(jobs.limited, inputs)]


async def _pending(url: str) -> int:
    async with bj.Runtime(url, jobs=jobs.ALL, load_entrypoints=False) as rt:
        return await rt.store.pending_count()


def spans(ledger: Path) -> list[tuple[float, float, str]]:
    found = []
    for line in ledger.read_text().splitlines():
        parts = line.split()
        if parts[3] == "span":
            found.append((float(parts[4]), float(parts[5]), parts[6]))
    return found


def peak(found: list[tuple[float, float, str]]) -> int:
    points = sorted([(s, 1) for s, _, _ in found] + [(e, -1) for _, e, _ in found])
    now = top = 0
    for _, step in points:
        now += step
        top = max(top, now)
    return top


def test_limits_hold_across_three_worker_processes(
    database_url: str, workers: Workers, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.txt"
    inputs = [{"account": f"acct{i % 6}", "seconds": 0.2} for i in range(60)]
    run(_enqueue, database_url, inputs)
    extra = {"BRAINS_JOBS_TEST_LEDGER": str(ledger)}
    procs = [workers.start(database_url, "-c", "8", **extra) for _ in range(3)]
    wait_until(lambda: run(_pending, database_url) == 0, 120, "the queue to drain", interval=0.5)
    assert [workers.stop(p) for p in procs] == [0, 0, 0]
    found = spans(ledger)
    assert len(found) == 60
    assert peak(found) == 4, "the shared limit of 4 was exceeded (or never reached)"
    for account in {a for _, _, a in found}:
        assert peak([s for s in found if s[2] == account]) == 1
    starts = sorted(s for s, _, _ in found)
    for i in range(len(starts) - 20):
        assert starts[i + 20] - starts[i] >= 0.95, "more than 20 starts within a second"


def test_a_throttle_holds_the_key_for_every_worker(
    database_url: str, workers: Workers, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.txt"
    extra = {"BRAINS_JOBS_TEST_LEDGER": str(ledger)}
    procs = [workers.start(database_url, "-c", "4", **extra) for _ in range(2)]
    run(_enqueue, database_url, [{"account": "t0", "throttle": True, "seconds": 0.05}])
    time.sleep(0.3)  # one worker took it and was throttled: "shared" is held for a second
    thrown = time.monotonic()
    run(_enqueue, database_url, [{"account": f"u{i}", "seconds": 0.05} for i in range(4)])
    wait_until(lambda: run(_pending, database_url) == 0, 30, "the queue to drain")
    assert [workers.stop(p) for p in procs] == [0, 0]
    found = spans(ledger)
    assert len(found) == 5
    # No worker started a "shared" job while the key was held.
    assert min(s for s, _, _ in found) >= thrown + 0.5
