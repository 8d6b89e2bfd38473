"""Running jobs end to end on each store: results, retries, failures, timeouts."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import anyio
import pytest

import brains_jobs as bj
from tests.integration.conftest import running_worker
from tests.support import jobs

pytestmark = pytest.mark.anyio


async def test_typed_round_trip(rt: bj.Runtime) -> None:
    by_definition = await rt.enqueue(jobs.add, jobs.Numbers(a=2, b=3))
    by_name = await rt.enqueue("add", {"a": 40, "b": 2})
    async with running_worker(rt):
        result = await by_definition.result(timeout=10)
        untyped = await by_name.result(timeout=10)
    assert isinstance(result, jobs.Sum) and result.total == 5
    assert isinstance(untyped, jobs.Sum) and untyped.total == 42
    job = await rt.get(by_definition.id)
    assert job.status is bj.JobStatus.SUCCEEDED
    assert job.input == {"a": 2, "b": 3} and job.output == {"total": 5}
    assert job.attempts == 1 and job.progress == 1.0
    assert job.started_at is not None and job.finished_at is not None
    assert job.created_at <= job.started_at <= job.finished_at


async def test_invalid_input_names_the_field(rt: bj.Runtime) -> None:
    with pytest.raises(bj.InvalidJobInput) as info:
        await rt.enqueue("add", {"a": "three"})
    assert info.value.fields == ["a"]
    assert "'add'" in str(info.value) and "a:" in str(info.value)
    assert (await rt.stats()).by_type == {}


async def test_unknown_type_names_it_and_the_known_types(rt: bj.Runtime) -> None:
    with pytest.raises(bj.UnknownJobType) as info:
        await rt.enqueue("ad", {"a": 1})
    message = str(info.value)
    assert "'ad'" in message and "'add'" in message and "'sleep'" in message


async def test_oversized_input_is_rejected_by_its_size_in_bytes(
    database_url: str, tmp_path: Path
) -> None:
    async with bj.Runtime(
        database_url,
        jobs=jobs.ALL,
        load_entrypoints=False,
        max_payload=100,
        artifacts=str(tmp_path / "artifacts"),
    ) as rt:
        with pytest.raises(bj.PayloadTooLarge, match="limit is 100"):
            await rt.enqueue(jobs.permanent, {"text": "x" * 200})
        # 40 characters, but 120 bytes of UTF-8: the limit counts bytes.
        with pytest.raises(bj.PayloadTooLarge, match=r"is 1[23]\d bytes"):
            await rt.enqueue(jobs.permanent, {"text": "\u20ac" * 40})
        await rt.enqueue(jobs.permanent, {"text": "x" * 40})


async def test_retry_with_growing_delay_and_attempt_count(rt: bj.Runtime) -> None:
    handle = await rt.enqueue(jobs.flaky, {"fail_times": 3})
    async with running_worker(rt):
        result = await handle.result(timeout=20)
    assert result.attempt == 4
    job = await rt.get(handle.id)
    assert job.attempts == 4
    assert [e.attempt for e in job.errors] == [1, 2, 3]
    assert [e.message for e in job.errors] == ["boom #1", "boom #2", "boom #3"]
    assert all(e.type == "RuntimeError" and "Traceback" in (e.traceback or "") for e in job.errors)
    history = await rt.store.events_after(0, job_id=handle.id)
    statuses = [e for e in history if e.kind is bj.EventKind.STATUS]
    delays = []
    for retry, rerun in itertools.pairwise(statuses):
        if retry.status is bj.JobStatus.QUEUED and retry.message:
            stated = float(re.search(r"retrying in ([0-9.]+)s", retry.message).group(1))
            assert rerun.status is bj.JobStatus.RUNNING
            # The job did not run before its retry time.
            assert (rerun.at - retry.at).total_seconds() >= stated - 0.011
            delays.append(stated)
    assert len(delays) == 3
    assert delays == sorted(delays) and delays[-1] > delays[0]


async def test_failure_after_max_attempts_keeps_every_error(rt: bj.Runtime) -> None:
    handle = await rt.enqueue(jobs.flaky, {"fail_times": 99, "message": "always"})
    async with running_worker(rt):
        with pytest.raises(bj.JobFailed) as info:
            await handle.result(timeout=20)
    assert info.value.attempts == 4
    assert "always #4" in str(info.value)
    job = await rt.get(handle.id)
    assert job.status is bj.JobStatus.FAILED
    assert [e.attempt for e in job.errors] == [1, 2, 3, 4]
    assert job.last_error is not None and job.last_error.message == "always #4"


async def test_permanent_error_is_not_retried(rt: bj.Runtime) -> None:
    handle = await rt.enqueue(jobs.permanent, {"text": "bad"})
    async with running_worker(rt):
        with pytest.raises(bj.JobFailed, match=r"PermanentError: cannot process 'bad'"):
            await handle.result(timeout=10)
    job = await rt.get(handle.id)
    assert job.attempts == 1 and job.max_attempts == 5


async def test_timeout_counts_as_a_failed_attempt(rt: bj.Runtime) -> None:
    handle = await rt.enqueue(jobs.slow_timeout, {"seconds": 30})
    async with running_worker(rt):
        with pytest.raises(bj.JobFailed, match=r"timed out after 0\.2s"):
            await handle.result(timeout=20)
    job = await rt.get(handle.id)
    assert job.attempts == 2
    assert [e.type for e in job.errors] == ["TimeoutError", "TimeoutError"]


async def test_chaining_sets_the_parent(rt: bj.Runtime) -> None:
    handle = await rt.enqueue(jobs.chain, {"a": 1, "b": 2})
    async with running_worker(rt):
        child_id = (await handle.result(timeout=10)).total
        child = await rt.handle(child_id).result(timeout=10)
    assert child == jobs.Sum(total=3)
    assert (await rt.get(child_id)).parent_id == handle.id
    logs = [
        e for e in await rt.store.events_after(0, job_id=handle.id) if e.kind is bj.EventKind.LOG
    ]
    assert [e.message for e in logs] == [f"enqueued follow-up {child_id}"]


async def test_delayed_job_waits_for_its_time(rt: bj.Runtime) -> None:
    later = await rt.enqueue(jobs.add, {"a": 1}, delay=0.5)
    now = await rt.enqueue(jobs.add, {"a": 2})
    async with running_worker(rt):
        await now.result(timeout=10)
        assert (await later.status()) is bj.JobStatus.QUEUED
        await later.result(timeout=10)
    job = await rt.get(later.id)
    assert job.started_at is not None and job.started_at >= job.run_at


async def test_priority_then_age(rt: bj.Runtime) -> None:
    low = await rt.enqueue(jobs.noop, {"a": 1}, priority=0)
    high = await rt.enqueue(jobs.noop, {"a": 2}, priority=10)
    mid = await rt.enqueue(jobs.noop, {"a": 3}, priority=5)
    async with running_worker(rt, concurrency=1, prefetch=0):
        for h in (low, high, mid):
            await h.result(timeout=10)
    started = {h.id: (await h.get()).started_at for h in (low, high, mid)}
    assert started[high.id] <= started[mid.id] <= started[low.id]


async def test_worker_takes_only_its_queues(rt: bj.Runtime) -> None:
    mine = await rt.enqueue(jobs.add, {"a": 1}, queue="mine")
    other = await rt.enqueue(jobs.add, {"a": 1}, queue="other")
    async with running_worker(rt, queues=["mine"]):
        await mine.result(timeout=10)
        await anyio.sleep(0.3)
        assert (await other.status()) is bj.JobStatus.QUEUED


async def test_worker_never_takes_a_type_it_lacks(database_url: str, tmp_path) -> None:
    async with bj.Runtime(
        database_url,
        jobs=[jobs.add, jobs.sleep],
        load_entrypoints=False,
        artifacts=str(tmp_path / "a"),
    ) as full:
        foreign = await full.enqueue(jobs.sleep, {"seconds": 0})
        known = await full.enqueue(jobs.add, {"a": 1})
    async with bj.Runtime(
        database_url, jobs=[jobs.add], load_entrypoints=False, artifacts=str(tmp_path / "a")
    ) as partial:
        await partial.run_worker(burst=True)
        assert (await partial.get(known.id)).status is bj.JobStatus.SUCCEEDED
        assert (await partial.get(foreign.id)).status is bj.JobStatus.QUEUED


async def test_burst_waits_for_retries_then_exits(rt: bj.Runtime) -> None:
    handle = await rt.enqueue(jobs.flaky, {"fail_times": 1})
    worker = await rt.run_worker(burst=True)
    assert (await handle.get()).status is bj.JobStatus.SUCCEEDED
    assert worker.processed == 2
