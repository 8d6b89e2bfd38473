"""Unique jobs on each store: a key is held while its job waits, is queued or runs; a
repeat returns the holder, is rejected, or replaces the holder's input; batches skip
repeats; many enqueuers at once make one job.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import anyio
import pytest

import brains_jobs as bj
from brains_jobs import testing
from tests.integration.conftest import running_worker, wait_for_status
from tests.support import jobs

pytestmark = pytest.mark.anyio

S = bj.JobStatus


async def test_the_key_is_free_once_its_job_finished(rt: bj.Runtime) -> None:
    first = await rt.enqueue(jobs.add, {"a": 1}, unique_key="k")
    again = await rt.enqueue(jobs.add, {"a": 2}, unique_key="k")
    assert first.created and not again.created and again.id == first.id
    async with running_worker(rt):
        await first.result(timeout=10)
    later = await rt.enqueue(jobs.add, {"a": 3}, unique_key="k")
    assert later.created and later.id != first.id
    assert (await rt.get(first.id)).unique_until == "finished"


async def test_a_key_can_be_kept_until_the_job_is_pruned(rt: bj.Runtime) -> None:
    first = await rt.enqueue(jobs.add, {"a": 1}, unique_key="k", unique_until="pruned")
    async with running_worker(rt):
        await first.result(timeout=10)
    again = await rt.enqueue(jobs.add, {"a": 2}, unique_key="k")
    assert not again.created and again.id == first.id
    assert await rt.prune(0) == [first.id]
    assert (await rt.enqueue(jobs.add, {"a": 3}, unique_key="k")).created


async def test_reject_names_the_holder(rt: bj.Runtime) -> None:
    first = await rt.enqueue(jobs.add, {"a": 1}, unique_key="k")
    with pytest.raises(bj.DuplicateJob, match=f"held by job {first.id}") as info:
        await rt.enqueue(jobs.add, {"a": 2}, unique_key="k", on_conflict="reject")
    assert (info.value.key, info.value.job_id) == ("k", first.id)
    # A rejected repeat in a batch takes the whole batch back.
    with pytest.raises(bj.DuplicateJob):
        await rt.enqueue_many(
            [
                bj.JobRequest(jobs.add, {"a": 3}, {"unique_key": "fresh"}),
                bj.JobRequest(jobs.add, {"a": 4}, {"unique_key": "k", "on_conflict": "reject"}),
            ]
        )
    assert [j.id for j in (await rt.list()).jobs] == [first.id]


async def test_replace_gives_a_queued_holder_the_new_input_and_run_time(rt: bj.Runtime) -> None:
    first = await rt.enqueue(jobs.add, {"a": 1}, unique_key="debounce", delay=60)
    later = datetime.now(UTC) + timedelta(seconds=120)
    again = await rt.enqueue(
        jobs.add, {"a": 2}, unique_key="debounce", on_conflict="replace", run_at=later
    )
    assert (again.id, again.created, again.replaced) == (first.id, False, True)
    job = await rt.get(first.id)
    assert job.input == {"a": 2, "b": 0}
    assert abs((job.run_at - later).total_seconds()) < 0.01
    events = await rt.store.events_after(0, job_id=first.id)
    assert [(e.kind, e.message) for e in events][-1] == (
        bj.EventKind.ACTION,
        "input and run time replaced by a repeat of its unique key",
    )


async def test_replace_leaves_a_running_holder_alone(rt: bj.Runtime) -> None:
    running = await rt.enqueue(jobs.sleep, {"seconds": 0.5, "ledger": False}, unique_key="k")
    async with running_worker(rt):
        await wait_for_status(rt, running.id, S.RUNNING)
        again = await rt.enqueue(
            jobs.sleep, {"seconds": 9, "ledger": False}, unique_key="k", on_conflict="replace"
        )
        assert (again.id, again.created, again.replaced) == (running.id, False, False)
        assert (await running.result(timeout=10)).seconds == 0.5


async def test_a_rescued_job_keeps_its_key_and_a_retried_one_waits_its_turn(
    rt: bj.Runtime,
) -> None:
    first = await rt.enqueue(jobs.add, {"a": 1}, unique_key="k")
    assert (
        len(await rt.store.claim(worker_id="w", queues=None, types=["add"], limit=1, lease=0.1))
        == 1
    )
    await anyio.sleep(0.3)
    assert await testing.rescue(rt) == [first.id]
    # Back in the queue, it still holds its key: no newer job can take it.
    assert not (await rt.enqueue(jobs.add, {"a": 2}, unique_key="k")).created
    assert await rt.cancel(first.id) is S.CANCELLED
    second = await rt.enqueue(jobs.add, {"a": 3}, unique_key="k")
    assert second.created
    with pytest.raises(bj.InvalidJobState, match=f"job {second.id} holds its unique key"):
        await rt.retry(first.id)


@pytest.mark.parametrize("on_conflict", ["return_existing", "reject", "replace"])
async def test_many_enqueuers_at_once_make_one_job(
    rt: bj.Runtime, database_url: str, on_conflict: str
) -> None:
    results: list[int | str] = []

    async def enqueue(client: bj.Runtime, i: int) -> None:
        try:
            handle = await client.enqueue(
                jobs.add, {"a": i}, unique_key="race", on_conflict=on_conflict, delay=30
            )
            results.append(handle.id)
        except bj.DuplicateJob as exc:
            results.append(f"duplicate of {exc.job_id}")

    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                bj.Runtime(database_url, jobs=jobs.ALL, load_entrypoints=False)
            )
            for _ in range(5)
        ]
        async with anyio.create_task_group() as tg:
            for i in range(50):
                tg.start_soon(enqueue, clients[i % 5], i)
    listed = (await rt.list()).jobs
    assert len(listed) == 1
    holder = listed[0].id
    if on_conflict == "reject":
        assert results.count(holder) == 1
        assert results.count(f"duplicate of {holder}") == 49
    else:
        assert results == [holder] * 50
