"""Admin actions on each store: resubmit, retry, force complete, force fail, move, their
bulk versions, and every attempt of a job; each action an audit event naming its actor.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio
import pytest

import brains_jobs as bj
from tests.integration.conftest import running_worker, wait_for_status
from tests.support import jobs

pytestmark = pytest.mark.anyio

S = bj.JobStatus
K = bj.EventKind


async def actions(rt: bj.Runtime, job_id: int) -> list[tuple[str, str | None, str | None]]:
    """The job's events that record someone's action: (kind, actor, message)."""
    events = await rt.store.events_after(0, job_id=job_id, limit=10_000)
    return [(e.kind.value, e.actor, e.message) for e in events if e.actor not in (None,)]


async def failed_job(rt: bj.Runtime) -> int:
    handle = await rt.enqueue(jobs.flaky, {"fail_times": 9})
    async with running_worker(rt, burst=True) as worker:
        await wait_for_status(rt, handle.id, S.FAILED)
        worker.stop()
    return handle.id


async def test_resubmit_makes_a_new_job_linked_to_the_original(rt: bj.Runtime) -> None:
    original = await rt.enqueue(jobs.add, {"a": 2, "b": 3}, tags=["t"], owner="ann", priority=4)
    async with running_worker(rt):
        await original.result(timeout=10)
        again = await rt.resubmit(original.id, actor="ops@example.com")
        assert (await again.result(timeout=10)).total == 5
    new = await rt.get(again.id)
    assert (new.original_id, new.input, new.tags, new.owner, new.priority) == (
        original.id,
        {"a": 2, "b": 3},
        ["t"],
        "ann",
        4,
    )
    assert ("action", "ops@example.com", f"resubmitted as job {again.id}") in await actions(
        rt, original.id
    )
    with pytest.raises(bj.JobNotFound):
        await rt.resubmit(again.id + 1000)


async def test_retry_gives_a_fresh_allowance_and_says_so(rt: bj.Runtime) -> None:
    job_id = await failed_job(rt)
    failed = await rt.get(job_id)
    assert (failed.attempts, failed.max_attempts) == (4, 4)
    await rt.retry(job_id, actor="ann")
    retried = await rt.get(job_id)
    assert (retried.status, retried.max_attempts) == (S.QUEUED, 8)
    assert ("status", "ann", "retried by request: 4 more attempt(s)") in await actions(rt, job_id)


async def test_force_complete_checks_the_output_against_the_model(rt: bj.Runtime) -> None:
    job_id = await failed_job(rt)
    with pytest.raises(bj.InvalidJobOutput, match="attempt") as info:
        await rt.force_complete(job_id, {"attempt": "many"}, actor="ann")
    assert info.value.fields == ["attempt"]
    assert (await rt.get(job_id)).status is S.FAILED
    await rt.force_complete(job_id, jobs.Attempt(attempt=99), actor="ann")
    done = await rt.get(job_id)
    assert (done.status, done.output) == (S.SUCCEEDED, {"attempt": 99})
    assert await rt.handle(job_id).result(timeout=1) is not None
    assert ("status", "ann", "completed by request") in await actions(rt, job_id)
    with pytest.raises(bj.InvalidJobState, match="succeeded already"):
        await rt.force_complete(job_id, {"attempt": 1})


async def test_force_complete_of_a_running_job_discards_its_result(rt: bj.Runtime) -> None:
    handle = await rt.enqueue(jobs.sleep, {"seconds": 30, "ledger": False})
    async with running_worker(rt) as worker:
        await wait_for_status(rt, handle.id, S.RUNNING)
        await rt.force_complete(handle.id, {"seconds": 0, "attempt": 0}, actor="ann")
        with anyio.fail_after(10):
            while worker._held:
                await anyio.sleep(0.02)
    done = await rt.get(handle.id)
    assert (done.status, done.output) == (S.SUCCEEDED, {"seconds": 0, "attempt": 0})


async def test_force_fail_names_the_reason(rt: bj.Runtime) -> None:
    handle = await rt.enqueue(jobs.add, {"a": 1}, delay=3600)
    await rt.force_fail(handle.id, "the upstream file is gone", actor="ann")
    job = await rt.get(handle.id)
    assert job.status is S.FAILED
    assert job.last_error is not None
    assert (job.last_error.type, job.last_error.message) == (
        "FailedByRequest",
        "the upstream file is gone",
    )
    with pytest.raises(bj.JobFailed, match="the upstream file is gone"):
        await handle.result(timeout=1)
    with pytest.raises(bj.InvalidJobState, match="cannot be failed"):
        await rt.force_fail(handle.id, "again")
    with pytest.raises(bj.InvalidJobOption, match="reason"):
        await rt.force_fail((await rt.enqueue(jobs.add, {"a": 1})).id, " ")


async def test_move_reassigns_queue_and_priority(rt: bj.Runtime) -> None:
    handle = await rt.enqueue(jobs.add, {"a": 1}, queue="slow")
    await rt.move(handle.id, queue="fast", priority=7, actor="ann")
    job = await rt.get(handle.id)
    assert (job.queue, job.priority, job.status) == ("fast", 7, S.QUEUED)
    assert ("action", "ann", "moved to queue fast, priority 7") in await actions(rt, handle.id)
    with pytest.raises(bj.InvalidJobOption, match="queue"):
        await rt.move(handle.id, queue="no spaces allowed")
    with pytest.raises(bj.InvalidJobOption):
        await rt.move(handle.id)
    async with running_worker(rt, queues=["fast"]):
        assert (await handle.result(timeout=10)).total == 1


async def test_bulk_actions_need_a_time_bound_and_respect_limit_and_dry_run(
    rt: bj.Runtime,
) -> None:
    since = datetime.now(UTC) - timedelta(minutes=1)
    failed = [await failed_job(rt) for _ in range(3)]
    with pytest.raises(bj.InvalidJobOption, match="time bound"):
        await rt.retry_many(type="flaky")
    preview = await rt.retry_many(type="flaky", created_after=since, dry_run=True)
    assert (preview.dry_run, sorted(preview.matched), preview.changed) == (True, failed, [])
    assert {(await rt.get(i)).status for i in failed} == {S.FAILED}
    some = await rt.retry_many(type="flaky", created_after=since, limit=2, actor="ann")
    assert sorted(some.changed) == sorted(failed)[1:]  # newest first
    assert [(await rt.get(i)).status for i in sorted(failed)] == [S.FAILED, S.QUEUED, S.QUEUED]
    assert any(
        a == ("status", "ann", "retried by request (bulk): 4 more attempt(s)")
        for a in await actions(rt, failed[-1])
    )

    queued = [(await rt.enqueue(jobs.add, {"a": i}, delay=3600)).id for i in range(3)]
    cancelled = await rt.cancel_many(
        type="add", created_after=since, created_before=datetime.now(UTC), actor="bob"
    )
    assert sorted(cancelled.changed) == sorted(queued)
    assert {(await rt.get(i)).status for i in queued} == {S.CANCELLED}
    with pytest.raises(bj.InvalidJobOption, match="status"):
        await rt.cancel_many(status="failed", created_after=since)


async def test_attempts_keep_start_end_worker_and_error(rt: bj.Runtime) -> None:
    handle = await rt.enqueue(jobs.flaky, {"fail_times": 2})
    async with running_worker(rt, worker_id="w-1"):
        assert (await handle.result(timeout=10)).attempt == 3
    attempts = await rt.attempts(handle.id)
    assert [a.number for a in attempts] == [1, 2, 3]
    assert [a.status for a in attempts] == [S.QUEUED, S.QUEUED, S.SUCCEEDED]
    assert {a.worker_id for a in attempts} == {"w-1"}
    assert [a.error.message if a.error else None for a in attempts] == [
        "boom #1",
        "boom #2",
        None,
    ]
    assert all(a.error.traceback for a in attempts[:2] if a.error)
    for a in attempts:
        assert a.ended_at is not None and a.duration is not None and a.duration >= 0
    assert attempts[0].ended_at <= attempts[1].started_at  # type: ignore[operator]
