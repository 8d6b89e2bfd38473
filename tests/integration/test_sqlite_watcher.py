"""SQLite hears other connections' commits: a job enqueued by another process wakes this
process's workers, and its events wake this process's readers, without waiting for the
next poll (which, on a watched file, comes only every second).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anyio
import pytest

import brains_jobs as bj
from brains_jobs.store.sqlite.connection import WATCHED_POLL
from tests.support import jobs

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]

ENQUEUE = """
import sys, anyio, brains_jobs as bj
from tests.support import jobs
async def main():
    async with bj.Runtime(sys.argv[1], jobs=jobs.ALL, load_entrypoints=False) as rt:
        await rt.enqueue(jobs.add, {"a": 1, "b": 2}, delay=float(sys.argv[2]))
anyio.run(main)
"""


def enqueue_elsewhere(url: str, delay: float = 0.0) -> None:
    subprocess.run(
        [sys.executable, "-c", ENQUEUE, url, str(delay)], cwd=ROOT, check=True, timeout=60
    )


def runtime(path: Path) -> bj.Runtime:
    return bj.Runtime(f"sqlite+aiosqlite:///{path}", jobs=jobs.ALL, load_entrypoints=False)


async def test_a_job_enqueued_by_another_process_wakes_the_workers(tmp_path: Path) -> None:
    async with runtime(tmp_path / "jobs.db") as rt:
        assert rt.store.poll_interval == WATCHED_POLL
        work = rt.store.work_signal.armed()
        events = rt.store.event_signal.armed()
        await anyio.to_thread.run_sync(enqueue_elsewhere, rt.store.url)
        # Nothing in this process wrote: only the watcher can have set these.
        with anyio.fail_after(WATCHED_POLL * 5):
            await work.wait()
            await events.wait()


async def test_a_write_without_events_wakes_nobody(tmp_path: Path) -> None:
    async with runtime(tmp_path / "jobs.db") as rt:
        other = runtime(tmp_path / "jobs.db")
        async with other:
            work = rt.store.work_signal.armed()
            events = rt.store.event_signal.armed()
            await other.set_limit("watched", concurrency=1)  # a commit without events
            await anyio.sleep(0.3)
            assert not work.is_set() and not events.is_set()


async def test_a_delayed_job_enqueued_elsewhere_runs_when_due(tmp_path: Path) -> None:
    async with runtime(tmp_path / "jobs.db") as rt:
        rt.store.poll_interval = 60.0  # only the watcher and the due time can wake it
        async with anyio.create_task_group() as tg:
            worker = rt.worker(concurrency=2)
            tg.start_soon(worker.run)
            await anyio.to_thread.run_sync(enqueue_elsewhere, rt.store.url, 0.2)
            with anyio.fail_after(10):
                while not (found := await rt.list(status=bj.JobStatus.SUCCEEDED)).jobs:
                    await anyio.sleep(0.05)
            worker.stop()
        assert found.jobs[0].output == {"total": 3}
