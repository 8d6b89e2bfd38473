"""Leases, fencing, lease rescue and shutdown, on each store."""

from __future__ import annotations

import anyio
import pytest

import brains_jobs as bj
from brains_jobs import testing
from brains_jobs.store import Outcome
from tests.integration.conftest import running_worker, wait_for_status
from tests.support import jobs

pytestmark = pytest.mark.anyio

S = bj.JobStatus


async def test_a_presumed_dead_worker_cannot_overwrite_the_next_attempt(rt: bj.Runtime) -> None:
    handle = await rt.enqueue(jobs.add, {"a": 1})
    store = rt.store
    (first,) = await store.claim(worker_id="a", queues=None, types=["add"], limit=1, lease=0.2)
    assert await store.mark_started([(first.id, first.lease_token)]) == set()
    await anyio.sleep(0.4)
    assert await testing.rescue(rt) == [handle.id]
    await anyio.sleep(0.1)  # its backoff
    # It crashed its worker once: it runs alone from now on.
    assert await store.claim(worker_id="b", queues=None, types=["add"], limit=1, lease=30) == []
    (second,) = await store.claim(
        worker_id="b", queues=None, types=["add"], limit=1, lease=30, isolated=True
    )
    assert (first.attempt, second.attempt) == (1, 2)
    assert first.lease_token != second.lease_token
    late = Outcome(handle.id, first.lease_token, S.SUCCEEDED, output='{"total": 666}')
    assert await store.finish([late]) == [handle.id]
    assert (await rt.get(handle.id)).status is S.RUNNING
    good = Outcome(handle.id, second.lease_token, S.SUCCEEDED, output='{"total": 1}')
    assert await store.finish([good]) == []
    job = await rt.get(handle.id)
    assert job.status is S.SUCCEEDED and job.output == {"total": 1}
    assert [e.type for e in job.errors] == ["LeaseExpired"]
    history = await store.events_after(0, job_id=handle.id)
    assert any("rejected" in (e.message or "") for e in history if e.kind is bj.EventKind.LOG)


async def test_expired_lease_of_last_attempt_fails_the_job(rt: bj.Runtime) -> None:
    handle = await rt.enqueue(jobs.add, {"a": 1}, max_attempts=1)
    (job,) = await rt.store.claim(worker_id="a", queues=None, types=["add"], limit=1, lease=0.1)
    await rt.store.mark_started([(job.id, job.lease_token)])
    await anyio.sleep(0.3)
    await testing.rescue(rt)
    with pytest.raises(bj.JobFailed, match="LeaseExpired"):
        await handle.result(timeout=5)


async def test_heartbeat_keeps_a_long_job_leased(rt: bj.Runtime) -> None:
    # Two and a half leases long; a lease of 1 s leaves a loaded test machine 0.8 s
    # for a renewal's round trip before the worker fences itself.
    handle = await rt.enqueue(jobs.sleep, {"seconds": 2.5, "ledger": False})
    async with running_worker(rt, lease=1.0):
        result = await handle.result(timeout=10)
    assert result.attempt == 1
    assert (await rt.get(handle.id)).errors == []


async def test_shutdown_releases_unfinished_jobs_giving_the_attempt_back(
    rt: bj.Runtime,
) -> None:
    slow = await rt.enqueue(jobs.sleep, {"seconds": 60, "ledger": False})
    async with running_worker(rt, shutdown_timeout=0.2) as worker:
        await wait_for_status(rt, slow.id, S.RUNNING)
        worker.stop()
    job = await rt.get(slow.id)
    # The attempt is given back: one more allowed; its number is not used again.
    assert job.status is S.QUEUED and job.errors == []
    assert (job.attempts, job.max_attempts) == (1, jobs.sleep.max_attempts + 1)
    assert (await rt.list(status="running")).jobs == []


async def test_shutdown_lets_running_jobs_finish_within_the_grace_period(rt: bj.Runtime) -> None:
    handle = await rt.enqueue(jobs.sleep, {"seconds": 0.5, "ledger": False})
    async with running_worker(rt, shutdown_timeout=10) as worker:
        await wait_for_status(rt, handle.id, S.RUNNING)
        worker.stop()
    assert (await rt.get(handle.id)).status is S.SUCCEEDED


async def test_cancelling_the_worker_task_releases_its_jobs(rt: bj.Runtime) -> None:
    handle = await rt.enqueue(jobs.sleep, {"seconds": 60, "ledger": False})
    async with anyio.create_task_group() as tg:
        tg.start_soon(rt.run_worker)
        await wait_for_status(rt, handle.id, S.RUNNING)
        tg.cancel_scope.cancel()
    job = await rt.get(handle.id)
    assert job.status is S.QUEUED
    assert (job.attempts, job.max_attempts) == (1, jobs.sleep.max_attempts + 1)
