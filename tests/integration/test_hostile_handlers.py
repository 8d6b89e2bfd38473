"""Handlers that misbehave, on each store: they raise what they should not, write text a
database cannot hold, block in threads, ignore timeouts, enqueue follow-ups and then
fail. The worker survives each, and each job ends as documented.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from pydantic import BaseModel

import brains_jobs as bj
from brains_jobs.worker.attempt import EXIT_STARVED
from tests.integration.conftest import running_worker, wait_for_status
from tests.support import jobs

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]

S = bj.JobStatus


class Do(BaseModel):
    what: str = ""
    seconds: float = 0.0


class Done(BaseModel):
    text: str = ""


@bj.job("raise", max_attempts=2, backoff=0.01)
async def raiser(ctx: bj.JobContext, inp: Do) -> Done:
    """Raises what the input names, as handlers sometimes do by accident."""
    if ctx.attempt == 2:
        return Done(text="second attempt")
    if inp.what == "cancelled":
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        future.cancel()
        await future  # a future another task cancelled: CancelledError, not ours
    if inp.what == "exit":
        raise SystemExit(3)
    if inp.what == "interrupt":
        raise KeyboardInterrupt
    if inp.what == "memory":
        raise MemoryError("asked for more than there is; nothing was kept")
    raise RuntimeError("plain")


@bj.job("unstorable", max_attempts=2, backoff=0.01)
async def unstorable(ctx: bj.JobContext, inp: Do) -> Done:
    """Writes NUL characters and lone surrogates everywhere a handler can."""
    bad = "a\x00b\ud800c"
    ctx.logger.info("log %s", bad)
    await ctx.progress(0.5, bad)
    if inp.what == "fail":
        raise RuntimeError(bad)
    return Done(text="ok")


@bj.job("threaded", max_attempts=2, backoff=0.01, timeout=0.3)
def threaded(ctx: bj.JobContext, inp: Do) -> Done:
    """A plain `def` handler: runs in a thread; checks `ctx.cancelled` when asked to."""
    deadline = time.monotonic() + inp.seconds
    while time.monotonic() < deadline:
        if inp.what == "cooperative":
            ctx.raise_if_cancelled()
        time.sleep(0.01)
    ctx.report_progress(1.0, f"thread {threading.current_thread().name}")
    return Done(text=f"slept {inp.seconds} in attempt {ctx.attempt}")


@bj.job("stubborn", max_attempts=1, timeout=0.2)
async def stubborn(ctx: bj.JobContext, inp: Do) -> Done:
    """Ignores its timeout: catches the cancellation and finishes its work."""
    try:
        await anyio.sleep(inp.seconds)
    except anyio.get_cancelled_exc_class():
        with anyio.CancelScope(shield=True):
            await anyio.sleep(0.3)
        return Done(text="finished anyway")
    return Done(text="in time")


@bj.job("spawn-then", max_attempts=2, backoff=0.01)
async def spawn_then(ctx: bj.JobContext, inp: Do) -> Done:
    """Enqueues a follow-up job, then fails on its first attempt."""
    child = await ctx.enqueue(jobs.add, {"a": ctx.attempt})
    if ctx.attempt == 1 and inp.what == "fail":
        raise RuntimeError(f"failing after enqueueing {child.id}")
    return Done(text=str(child.id))


@bj.job("slow-cancellable", max_attempts=3, backoff=0.01)
async def slow_cancellable(ctx: bj.JobContext, inp: Do) -> Done:
    """Turns a cancellation into another error (as some libraries wrap it)."""
    try:
        await anyio.sleep(inp.seconds)
    except anyio.get_cancelled_exc_class():
        raise RuntimeError("wrapped cancellation") from None
    return Done()


EXTRA = [raiser, unstorable, threaded, stubborn, spawn_then, slow_cancellable]


@pytest.fixture
async def hrt(database_url: str, tmp_path: Path) -> AsyncIterator[bj.Runtime]:
    async with bj.Runtime(
        database_url,
        jobs=[*jobs.ALL, *EXTRA],
        load_entrypoints=False,
        artifacts=str(tmp_path / "artifacts"),
        lease=5.0,
    ) as rt:
        yield rt


@pytest.mark.parametrize("what", ["cancelled", "exit", "interrupt", "memory"])
async def test_what_a_handler_raises_is_a_failed_attempt_and_the_worker_goes_on(
    hrt: bj.Runtime, what: str
) -> None:
    handle = await hrt.enqueue(raiser, {"what": what})
    after = await hrt.enqueue(jobs.add, {"a": 1})
    async with running_worker(hrt, concurrency=1):
        assert (await handle.result(timeout=10)).text == "second attempt"
        assert (await after.result(timeout=10)).total == 1
    job = await handle.get()
    expected = {
        "cancelled": "CancelledError",
        "exit": "SystemExit",
        "interrupt": "KeyboardInterrupt",
        "memory": "MemoryError",
    }
    assert job.attempts == 2 and [e.type for e in job.errors] == [expected[what]]


async def test_text_a_database_cannot_hold_is_stored_replaced(hrt: bj.Runtime) -> None:
    ok = await hrt.enqueue(unstorable, {})
    failing = await hrt.enqueue(unstorable, {"what": "fail"})
    others = [await hrt.enqueue(jobs.add, {"a": i}) for i in range(20)]
    async with running_worker(hrt):
        assert (await ok.result(timeout=10)).text == "ok"
        with pytest.raises(bj.JobFailed):
            await failing.result(timeout=10)
        assert [(await h.result(timeout=10)).total for h in others] == list(range(20))
    job = await failing.get()
    assert [e.message for e in job.errors] == ["a\ufffdb\ufffdc"] * 2
    history = await hrt.store.events_after(0, job_id=ok.id)
    assert "log a\ufffdb\ufffdc" in [e.message for e in history]
    assert (await ok.get()).progress_message == "a\ufffdb\ufffdc"


async def test_a_thread_that_overruns_its_timeout_keeps_its_lease_and_its_result(
    hrt: bj.Runtime,
) -> None:
    slow = await hrt.enqueue(threaded, {"seconds": 1.0})
    quick = await hrt.enqueue(jobs.add, {"a": 7})
    async with running_worker(hrt, concurrency=1):
        # The slot is given back at the timeout: the next job runs meanwhile.
        assert (await quick.result(timeout=5)).total == 7
        assert (await slow.get()).status is S.RUNNING
        # The thread's late result stands: its effect happened once, not twice.
        assert (await slow.result(timeout=10)).text == "slept 1.0 in attempt 1"
    assert (await slow.get()).attempts == 1


async def test_a_thread_that_checks_for_cancellation_stops_at_its_timeout(
    hrt: bj.Runtime,
) -> None:
    handle = await hrt.enqueue(threaded, {"seconds": 5.0, "what": "cooperative"})
    async with running_worker(hrt):
        with pytest.raises(bj.JobFailed, match="TimeoutError"):
            await handle.result(timeout=10)
    job = await handle.get()
    assert [e.type for e in job.errors] == ["TimeoutError", "TimeoutError"]


async def test_a_handler_that_returns_after_its_timeout_succeeds(hrt: bj.Runtime) -> None:
    handle = await hrt.enqueue(stubborn, {"seconds": 5.0})
    async with running_worker(hrt):
        assert (await handle.result(timeout=10)).text == "finished anyway"


async def test_follow_up_jobs_exist_only_when_their_attempt_succeeds(hrt: bj.Runtime) -> None:
    handle = await hrt.enqueue(spawn_then, {"what": "fail"})
    async with running_worker(hrt):
        child_id = int((await handle.result(timeout=10)).text)
        child = hrt.handle(child_id)
        assert (await child.result(timeout=10)).total == 2
    listed = (await hrt.list(type="add")).jobs
    assert [(j.id, j.parent_id) for j in listed] == [(child_id, handle.id)]


async def test_a_cancel_request_wins_over_a_failing_attempt(hrt: bj.Runtime) -> None:
    handle = await hrt.enqueue(slow_cancellable, {"seconds": 30})
    async with running_worker(hrt):
        await wait_for_status(hrt, handle.id, S.RUNNING)
        assert await hrt.cancel(handle.id) is S.RUNNING
        with pytest.raises(bj.JobCancelled):
            await handle.result(timeout=10)
    job = await handle.get()
    assert job.status is S.CANCELLED and job.attempts == 1
    assert [e.type for e in job.errors] == ["RuntimeError"]


async def test_a_cancel_request_another_process_made_wins_over_a_failing_attempt(
    hrt: bj.Runtime, database_url: str, tmp_path: Path
) -> None:
    handle = await hrt.enqueue(slow_cancellable, {"seconds": 30})
    async with running_worker(hrt, lease=0.6):
        await wait_for_status(hrt, handle.id, S.RUNNING)
        async with bj.Runtime(database_url, load_entrypoints=False) as other:
            assert await other.cancel(handle.id, actor="ops") is S.RUNNING
        with pytest.raises(bj.JobCancelled):
            await handle.result(timeout=10)
    events = await hrt.store.events_after(0, job_id=handle.id)
    actions = [(e.kind, e.actor, e.message) for e in events if e.kind is bj.EventKind.ACTION]
    assert actions == [(bj.EventKind.ACTION, "ops", "cancel requested")]


STARVE = """
import sys
from brains_jobs.worker.attempt import exit_if_starved
from tests.faults.jobs import exhaust_memory
exit_if_starved()  # memory to spare: it returns
exhaust_memory(64 * 2**20)
exit_if_starved()
sys.exit(0)
"""


def test_a_worker_left_without_memory_exits_as_a_crash() -> None:
    """After a `MemoryError` that took the process's memory with it, the worker ends at
    once (a starved worker would fail every job it claims); the rescue then charges
    the job a crash. The fault suite's memory pill shows the whole story.
    """
    command = [sys.executable, "-c", STARVE]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == EXIT_STARVED, done.stderr
    assert "left this worker without memory" in done.stderr
