"""Lifecycle callbacks on each store: `on_success` and `on_failure` run once per
finished attempt, after the outcome is stored; a callback that raises is logged and
never changes the job; callbacks a dead worker did not run are run by the sweeper.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

import brains_jobs as bj
from brains_jobs.maintenance import CallbackSweeper
from tests.integration.conftest import wait_for_status
from tests.support import jobs

pytestmark = pytest.mark.anyio

S = bj.JobStatus

CALLS: list[tuple[str, int, Any, bj.JobStatus]] = []


async def succeeded(job: bj.Job, output: jobs.Sum) -> None:
    assert isinstance(output, jobs.Sum)
    CALLS.append(("success", job.id, output.total, job.status))
    if output.total == 13:
        raise RuntimeError("the callback itself fails")


def failed(job: bj.Job, error: bj.AttemptError | None) -> None:  # a plain one: in a thread
    CALLS.append(("failure", job.id, error.message if error else None, job.status))


async def add_or_fail(ctx: bj.JobContext, inp: jobs.Numbers) -> jobs.Sum:
    if inp.b < 0:
        raise RuntimeError(f"negative {inp.b}")
    return jobs.Sum(total=inp.a + inp.b)


WATCHED = bj.JobDefinition(
    "watched",
    add_or_fail,
    jobs.Numbers,
    jobs.Sum,
    max_attempts=2,
    retry=bj.RetryPolicy(base=0.01, cap=0.02),
    on_success=succeeded,
    on_failure=failed,
)


@pytest.fixture(autouse=True)
def clear_calls() -> None:
    CALLS.clear()


def runtime(url: str) -> bj.Runtime:
    return bj.Runtime(url, jobs=[WATCHED], load_entrypoints=False, lease=5.0)


async def test_callbacks_run_once_after_the_outcome_is_stored(database_url: str) -> None:
    async with runtime(database_url) as rt:
        ok = await rt.enqueue(WATCHED, {"a": 2, "b": 3})
        bad = await rt.enqueue(WATCHED, {"a": 1, "b": -1})
        await rt.run_worker(burst=True, maintenance=False)
        assert sorted(CALLS, key=lambda c: c[1]) == [
            ("success", ok.id, 5, S.SUCCEEDED),
            ("failure", bad.id, "negative -1", S.FAILED),  # after its last attempt only
        ]
        assert (await rt.get(bad.id)).attempts == 2
        assert await rt.store.callbacks_due(["watched"], 0.0, 10) == []


async def test_a_raising_callback_never_changes_the_job(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with runtime(database_url) as rt:
        handle = await rt.enqueue(WATCHED, {"a": 6, "b": 7})
        with caplog.at_level(logging.ERROR, logger="brains_jobs.callbacks"):
            await rt.run_worker(burst=True, maintenance=False)
        assert CALLS == [("success", handle.id, 13, S.SUCCEEDED)]
        job = await rt.get(handle.id)
        assert (job.status, job.output) == (S.SUCCEEDED, {"total": 13})
        assert "on_success raised RuntimeError: the callback itself fails" in caplog.text
        assert await rt.store.callbacks_due(["watched"], 0.0, 10) == []


async def test_callbacks_a_dead_worker_missed_are_swept(database_url: str) -> None:
    async with runtime(database_url) as rt:
        handle = await rt.enqueue(WATCHED, {"a": 1, "b": 1})
        worker = rt.worker(burst=True)
        worker.writer.written = None  # as if it died between the commit and its callbacks
        await worker.run()
        await wait_for_status(rt, handle.id, S.SUCCEEDED)
        assert CALLS == []
        sweeper = CallbackSweeper(quiet_for=0.0)
        ctx = rt.maintenance().ctx
        assert await sweeper.run_once(ctx) == 1
        assert await sweeper.run_once(ctx) == 0
        assert CALLS == [("success", handle.id, 2, S.SUCCEEDED)]
