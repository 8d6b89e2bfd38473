"""Tracking jobs on each store: created running, reported on from another runtime,
completed or failed from outside, lost past their ttl; a worker job handing itself
over; usage reported by handlers and reporters, summed in the stats.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from pydantic import BaseModel

import brains_jobs as bj
from brains_jobs.maintenance import Rescuer
from tests.integration.conftest import running_worker, wait_for_status
from tests.support import jobs

pytestmark = pytest.mark.anyio

S = bj.JobStatus


class ImportIn(BaseModel):
    source: str


class ImportOut(BaseModel):
    rows: int


async def _never(ctx: bj.JobContext, inp: ImportIn) -> ImportOut:
    raise AssertionError("a tracking job is never run by a worker")


IMPORT = bj.JobDefinition("import", _never, ImportIn, ImportOut)


@bj.job("batch.submit", max_attempts=1)
async def submit(ctx: bj.JobContext, inp: ImportIn) -> ImportOut:
    """Start work elsewhere and hand the job over to its completion."""
    ctx.usage(cost_cents=2)
    await ctx.progress(0.1, "submitted")
    ctx.hand_over(ttl=60)


@bj.job("metered", max_attempts=2, backoff=0.01, backoff_cap=0.02)
async def metered(ctx: bj.JobContext, inp: jobs.Numbers) -> jobs.Sum:
    """Report usage on every attempt; fail the first one when asked."""
    ctx.usage(input_tokens=1000, cost_cents=1.5)
    if inp.b < 0 and ctx.attempt == 1:
        raise RuntimeError("first attempt fails")
    return jobs.Sum(total=inp.a)


@pytest.fixture
async def rt(database_url: str, tmp_path: Path) -> AsyncIterator[bj.Runtime]:
    async with bj.Runtime(
        database_url,
        jobs=[IMPORT, submit, metered],
        load_entrypoints=False,
        artifacts=str(tmp_path / "artifacts"),
        lease=5.0,
    ) as runtime:
        yield runtime


@pytest.fixture
async def other(database_url: str, tmp_path: Path) -> AsyncIterator[bj.Runtime]:
    """A second runtime on the same database, as another process would have."""
    async with bj.Runtime(
        database_url, jobs=[IMPORT], load_entrypoints=False, artifacts=str(tmp_path / "a2")
    ) as runtime:
        yield runtime


async def test_a_tracking_job_is_reported_on_and_completed_from_elsewhere(
    rt: bj.Runtime, other: bj.Runtime
) -> None:
    handle = await rt.track(IMPORT, ImportIn(source="s3://x"), owner="ann", ttl=60)
    job = await rt.get(handle.id)
    assert (job.status, job.tracked, job.track_ttl, job.owner) == (S.RUNNING, True, 60.0, "ann")
    await other.report(handle.id, progress=0.4, message="40%", usage={"rows": 400}, actor="etl")
    assert (await rt.get(handle.id)).progress == 0.4
    with pytest.raises(bj.InvalidJobOutput, match="rows"):
        await other.complete(handle.id, {"rows": "lots"})
    await other.complete(handle.id, ImportOut(rows=1000), usage={"rows": 600}, actor="etl")
    result = await handle.result(timeout=5)
    assert isinstance(result, ImportOut) and result.rows == 1000
    done = await rt.get(handle.id)
    assert (done.status, done.usage) == (S.SUCCEEDED, {"rows": 1000})
    events = await rt.store.events_after(0, job_id=handle.id)
    assert [(e.kind.value, e.status, e.actor) for e in events] == [
        ("status", S.QUEUED, None),
        ("status", S.RUNNING, None),
        ("progress", S.RUNNING, "etl"),
        ("status", S.SUCCEEDED, "etl"),
    ]
    with pytest.raises(bj.InvalidJobState, match="succeeded"):
        await other.report(handle.id, progress=1.0)
    stats = await rt.stats()
    assert stats.by_type["import"][S.SUCCEEDED] == 1


async def test_a_tracking_job_of_an_unknown_type_takes_any_object(rt: bj.Runtime) -> None:
    handle = await rt.track("crm.sync", {"account": 7}, ttl=60)
    await rt.fail(handle.id, ValueError("the CRM said no"), actor="sync")
    job = await rt.get(handle.id)
    assert job.status is S.FAILED and job.last_error is not None
    assert (job.last_error.type, job.last_error.message) == ("ValueError", "the CRM said no")
    with pytest.raises(bj.JobFailed, match="the CRM said no"):
        await handle.result(timeout=1)
    with pytest.raises(bj.InvalidJobOption, match="ttl"):
        await rt.track("crm.sync", {}, ttl=0)


async def test_a_silent_tracking_job_is_lost_past_its_ttl(rt: bj.Runtime) -> None:
    handle = await rt.track(IMPORT, {"source": "x"}, ttl=0.3)
    await anyio.sleep(0.2)
    await rt.report(handle.id, message="still here")  # renews the ttl
    await anyio.sleep(0.2)
    rescuer = Rescuer()
    ctx = rt.maintenance().ctx
    assert await rescuer.rescue(ctx) == []
    await anyio.sleep(0.3)
    assert await rescuer.rescue(ctx) == [handle.id]
    job = await rt.get(handle.id)
    assert job.status is S.FAILED and job.last_error is not None
    assert job.last_error.type == "Lost"
    with pytest.raises(bj.InvalidJobState, match="lost"):
        await rt.report(handle.id, progress=0.9)


async def test_worker_jobs_cannot_be_completed_as_tracking_jobs(rt: bj.Runtime) -> None:
    handle = await rt.enqueue(metered, {"a": 1}, delay=3600)
    with pytest.raises(bj.InvalidJobState, match="force_complete"):
        await rt.complete(handle.id, {"total": 1})


async def test_a_worker_job_hands_itself_over(rt: bj.Runtime) -> None:
    handle = await rt.enqueue(submit, {"source": "batch-1"})
    async with running_worker(rt) as worker:
        with anyio.fail_after(10):
            while not (await rt.get(handle.id)).tracked:
                await anyio.sleep(0.02)
        assert worker.writer.rejected == 0
    job = await rt.get(handle.id)
    assert (job.status, job.tracked, job.track_ttl, job.progress) == (S.RUNNING, True, 60.0, 0.1)
    assert job.usage == {"cost_cents": 2}
    await rt.report(handle.id, progress=0.7)
    await rt.complete(handle.id, {"rows": 3})
    assert (await handle.result(timeout=5)).rows == 3


async def test_usage_is_summed_over_attempts_types_and_owners(rt: bj.Runtime) -> None:
    first = await rt.enqueue(metered, {"a": 1, "b": -1}, owner="ann")
    second = await rt.enqueue(metered, {"a": 2}, owner="bob")
    async with running_worker(rt):
        await first.result(timeout=10)
        await second.result(timeout=10)
    assert (await rt.get(first.id)).usage == {"input_tokens": 2000, "cost_cents": 3}
    stats = await rt.stats()
    assert stats.usage["metered"] == {"input_tokens": 3000, "cost_cents": 4.5}
    assert stats.usage_by_owner == {
        "ann": {"input_tokens": 2000, "cost_cents": 3},
        "bob": {"input_tokens": 1000, "cost_cents": 1.5},
    }
    durations = stats.durations["metered"]
    assert durations.count == 2 and 0 <= durations.p50 <= durations.max


async def test_usage_must_be_numbers(rt: bj.Runtime) -> None:
    @bj.job("bad.usage", max_attempts=1)
    async def bad(ctx: bj.JobContext, inp: jobs.Numbers) -> jobs.Sum:
        ctx.usage(cost=float("nan"))
        return jobs.Sum(total=0)

    async with bj.Runtime(rt.url, jobs=[bad], load_entrypoints=False) as other:
        handle = await other.enqueue(bad, {"a": 1})
        async with running_worker(other):
            await wait_for_status(other, handle.id, S.FAILED)
        error = (await other.get(handle.id)).last_error
        assert error is not None and "finite number" in error.message
