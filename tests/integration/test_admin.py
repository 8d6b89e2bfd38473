"""Enqueue options and administration: unique keys, batches, listing, cancel, retry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio
import pytest

import brains_jobs as bj
from tests.integration.conftest import running_worker, wait_for_status
from tests.support import jobs

pytestmark = pytest.mark.anyio


async def test_unique_key_returns_the_existing_job(rt: bj.Runtime) -> None:
    first = await rt.enqueue(jobs.add, {"a": 1}, unique_key="k1")
    again = await rt.enqueue(jobs.add, {"a": 2}, unique_key="k1")
    assert first.created and not again.created and again.id == first.id
    assert (await rt.get(first.id)).input == {"a": 1, "b": 0}


async def test_enqueue_many_is_idempotent_by_key(rt: bj.Runtime) -> None:
    await rt.enqueue(jobs.add, {"a": 0}, unique_key="b")
    requests = [bj.JobRequest(jobs.add, {"a": i}, {"unique_key": k}) for i, k in enumerate("abcb")]
    requests.append(bj.JobRequest("noop", {"a": 9}))
    handles = await rt.enqueue_many(requests)
    assert [h.created for h in handles] == [True, False, True, False, True]
    assert handles[1].id == handles[3].id
    assert len({h.id for h in handles}) == 4
    total = sum(sum(c.values()) for c in (await rt.stats()).by_type.values())
    assert total == 4


async def test_enqueue_many_validates_everything_first(rt: bj.Runtime) -> None:
    with pytest.raises(bj.InvalidJobInput, match="a:"):
        await rt.enqueue_many(jobs.add, [{"a": 1}, {"a": "x"}, {"a": 3}])
    assert (await rt.stats()).by_type == {}
    handles = await rt.enqueue_many(jobs.add, [{"a": i} for i in range(500)], tags=["bulk"])
    assert len(handles) == 500 and len({h.id for h in handles}) == 500
    assert [h.id for h in handles] == sorted(h.id for h in handles)
    await rt.run_worker(50, burst=True)
    results = [await h.result(timeout=5) for h in handles[:3]]
    assert [r.total for r in results] == [0, 1, 2]


async def test_list_filters_and_pages(rt: bj.Runtime) -> None:
    start = datetime.now(UTC) - timedelta(seconds=1)
    for i in range(5):
        await rt.enqueue(jobs.add, {"a": i}, tags=["even" if i % 2 == 0 else "odd"], owner="ann")
    await rt.enqueue(jobs.noop, {"a": 1}, queue="q2", owner="bob", metadata={"source": "test"})
    assert [j.input["a"] for j in (await rt.list(tag="even")).jobs] == [4, 2, 0]
    assert len((await rt.list(owner="bob")).jobs) == 1
    assert (await rt.list(owner="bob")).jobs[0].metadata == {"source": "test"}
    assert len((await rt.list(queue="q2", type="noop")).jobs) == 1
    assert len((await rt.list(status="queued")).jobs) == 6
    assert len((await rt.list(created_after=start)).jobs) == 6
    assert (await rt.list(created_before=start)).jobs == []
    page1 = await rt.list(type="add", limit=2)
    page2 = await rt.list(type="add", limit=2, cursor=page1.next_cursor)
    page3 = await rt.list(type="add", limit=2, cursor=page2.next_cursor)
    seen = [j.id for p in (page1, page2, page3) for j in p.jobs]
    assert len(seen) == 5 == len(set(seen)) and seen == sorted(seen, reverse=True)
    stats = await rt.stats()
    assert stats.by_type == {"add": {bj.JobStatus.QUEUED: 5}, "noop": {bj.JobStatus.QUEUED: 1}}
    assert stats.by_status == {bj.JobStatus.QUEUED: 6}


async def test_cancel_a_queued_job(rt: bj.Runtime) -> None:
    handle = await rt.enqueue(jobs.add, {"a": 1}, delay=0.2)
    assert await rt.cancel(handle.id) is bj.JobStatus.CANCELLED
    async with running_worker(rt):
        await anyio.sleep(0.5)
    with pytest.raises(bj.JobCancelled):
        await handle.result(timeout=1)
    assert (await handle.get()).attempts == 0
    with pytest.raises(bj.InvalidJobState, match="cancelled and cannot be cancelled"):
        await rt.cancel(handle.id)


async def test_cancel_a_running_job_in_process(rt: bj.Runtime) -> None:
    handle = await rt.enqueue(jobs.sleep, {"seconds": 60, "ledger": False})
    async with running_worker(rt):
        await wait_for_status(rt, handle.id, bj.JobStatus.RUNNING)
        assert await rt.cancel(handle.id) is bj.JobStatus.RUNNING
        with pytest.raises(bj.JobCancelled):
            await handle.result(timeout=5)
    job = await handle.get()
    assert job.status is bj.JobStatus.CANCELLED and job.finished_at is not None


async def test_cancel_a_running_job_from_another_runtime(
    rt: bj.Runtime, database_url: str, tmp_path
) -> None:
    handle = await rt.enqueue(jobs.sleep, {"seconds": 60, "ledger": False})
    async with running_worker(rt):
        await wait_for_status(rt, handle.id, bj.JobStatus.RUNNING)
        async with bj.Runtime(
            database_url, load_entrypoints=False, artifacts=str(tmp_path)
        ) as other:
            assert await other.cancel(handle.id) is bj.JobStatus.RUNNING
        with pytest.raises(bj.JobCancelled):
            await handle.result(timeout=5)


async def test_retry_a_failed_job_keeps_earlier_attempts(rt: bj.Runtime) -> None:
    handle = await rt.enqueue(jobs.flaky, {"fail_times": 4})
    async with running_worker(rt):
        with pytest.raises(bj.JobFailed):
            await handle.result(timeout=20)
        with pytest.raises(bj.InvalidJobState, match="only failed, cancelled or skipped"):
            await rt.retry((await rt.enqueue(jobs.add, {"a": 1})).id)
        retried = await rt.retry(handle.id)
        assert (await retried.result(timeout=20)).attempt == 5
    job = await handle.get()
    assert job.attempts == 5 and [e.attempt for e in job.errors] == [1, 2, 3, 4]


async def test_missing_job(rt: bj.Runtime) -> None:
    with pytest.raises(bj.JobNotFound, match="no job with id 999"):
        await rt.get(999)
    with pytest.raises(bj.JobNotFound):
        await rt.cancel(999)
    with pytest.raises(bj.JobNotFound):
        await rt.retry(999)


async def test_prune_removes_old_finished_jobs_with_their_events_and_artifacts(
    rt: bj.Runtime,
) -> None:
    done = await rt.enqueue(jobs.add, {"a": 1})
    failed = await rt.enqueue(jobs.permanent, {"text": "x"})
    waiting = await rt.enqueue(jobs.add, {"a": 2}, delay=60)
    async with running_worker(rt):
        await done.result(timeout=10)
        with pytest.raises(bj.JobFailed):
            await failed.result(timeout=10)
    ref = await rt.artifacts.put(done.id, b"bytes", name="out.bin")
    assert await rt.prune(older_than=60) == []  # too recent
    assert sorted(await rt.prune(older_than=0, statuses=["succeeded"])) == [done.id]
    with pytest.raises(bj.JobNotFound):
        await rt.get(done.id)
    assert await rt.store.events_after(0, job_id=done.id) == []
    with pytest.raises(bj.BrainsJobsError, match="no artifact"):
        await rt.artifacts.get(ref)
    assert await rt.prune(older_than=0) == [failed.id]
    assert (await rt.get(waiting.id)).status is bj.JobStatus.QUEUED
