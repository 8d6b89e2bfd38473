"""SQLite hears other connections' commits: a job enqueued by another process wakes this
process's workers, and its events wake this process's readers, without waiting for the
next poll (which, on a watched file, comes only every `WATCHED_POLL` seconds).
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


async def test_a_commit_heard_while_the_events_are_read_is_not_missed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process commits an event while this process's event feed is reading, too
    late for the read: the watcher's wake-up must not be lost, or the event would wait
    for the next poll (`WATCHED_POLL`).
    """
    path = tmp_path / "jobs.db"
    async with runtime(path) as rt, runtime(path) as other:
        read = rt.store.events_after
        trigger = anyio.Event()
        handles: list[bj.JobHandle[jobs.Sum]] = []

        async def read_then_commit(*args: object, **kwargs: object) -> object:
            page = await read(*args, **kwargs)  # type: ignore[arg-type]
            if trigger.is_set() and not handles:
                handles.append(await other.enqueue(jobs.add, {"a": 1, "b": 2}))
                await anyio.sleep(0.3)  # the watcher hears the commit (it looks every 1-100 ms)
            return page

        monkeypatch.setattr(rt.store, "events_after", read_then_commit)
        async with rt.events(kinds={bj.EventKind.STATUS}) as events:
            await anyio.sleep(0.1)  # the feed read once and waits
            trigger.set()
            rt.store.event_signal.notify()  # wake it: the read that follows commits
            with anyio.fail_after(WATCHED_POLL / 2):
                async for event in events:
                    if handles and event.job_id == handles[0].id:
                        assert event.status is bj.JobStatus.QUEUED
                        break
