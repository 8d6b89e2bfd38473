"""The maintenance role: expired leases, pruning, leadership, the workers registry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio

from ...models import WorkerInfo
from ...store import Change, Outcome, Store
from ._support import (
    UNUSUAL,
    WORKER,
    S,
    claim,
    enqueue,
    error,
    get,
    history,
    job,
    running,
    succeed,
)


def _worker(worker_id: str, *, age: float, running: int = 0, concurrency: int = 4) -> WorkerInfo:
    now = datetime.now(UTC)
    return WorkerInfo(
        id=worker_id,
        host=f"host-{UNUSUAL}",
        pid=4242,
        queues=["default", "reports"],
        types=["contract.echo"],
        concurrency=concurrency,
        started_at=now - timedelta(seconds=age),
        heartbeat_at=now,
        running=running,
        version="1.2.3",
    )


class MaintenanceContract:
    """`Maintenance`: `expired`, `prune`, `lead`/`resign`/`leader`, and the workers."""

    async def test_expired_lists_only_running_jobs_past_their_lease(self, store: Store) -> None:
        """`expired` lists the running jobs whose lease has expired (with their lease,
        counts, start flag and worker), up to `limit`, and nothing else.
        """
        gone = await running(store, 2, lease=0.3)
        assert await store.expired(10) == []
        (kept,) = await enqueue(store, job(3))
        (held,) = await claim(store, lease=30.0)
        assert held.id == kept
        (queued,) = await enqueue(store, job(4))
        ask = Change(gone[1].id, frozenset({S.RUNNING}), S.RUNNING, request_cancel=True)
        assert await store.apply([ask]) == [gone[1].id]
        await anyio.sleep(0.5)
        found = sorted(await store.expired(10), key=lambda e: e.id)
        assert [e.id for e in found] == [g.id for g in gone]
        for expired, claimed in zip(found, gone, strict=True):
            assert (expired.type, expired.lease_token) == (claimed.type, claimed.lease_token)
            assert (expired.attempts, expired.max_attempts, expired.crashes) == (1, 3, 0)
            assert (expired.started, expired.worker_id) == (False, WORKER)
        assert [e.cancel_requested for e in found] == [False, True]
        assert len(await store.expired(1)) == 1
        assert (await get(store, gone[0].id)).status is S.RUNNING
        assert (await get(store, queued)).status is S.QUEUED

    async def test_prune_deletes_old_final_jobs_with_their_events(self, store: Store) -> None:
        """`prune` deletes the jobs of the given final statuses that finished longer
        ago than their age, with their events; others stay.
        """
        old, young, failed, live = await running(store, 4)
        await succeed(store, old)
        failure = Outcome(failed.id, failed.lease_token, S.FAILED, error=error())
        assert await store.finish([failure]) == []
        await anyio.sleep(0.5)
        await succeed(store, young)
        (queued,) = await enqueue(store, job(9))
        assert await store.prune({S.SUCCEEDED: 3600.0}, 10) == []
        assert await store.prune({S.SUCCEEDED: 0.3, S.QUEUED: 0.0, S.RUNNING: 0.0}, 10) == [old.id]
        assert await store.get(old.id) is None
        assert await history(store, old.id) == []
        for kept in (young.id, failed.id, live.id, queued):
            assert await store.get(kept) is not None
            assert await history(store, kept) != []
        assert await store.prune({S.FAILED: 0.0}, 10) == [failed.id]

    async def test_prune_takes_at_most_limit_per_status(self, store: Store) -> None:
        """`prune` deletes at most `limit` jobs of each status, oldest finished first."""
        claimed = await running(store, 5)
        for c in claimed[:3]:
            await succeed(store, c)
            await anyio.sleep(0.01)
        for c in claimed[3:]:
            gone = Change(c.id, frozenset({S.RUNNING}), S.CANCELLED, lease_token=c.lease_token)
            assert await store.apply([gone]) == [c.id]
        await anyio.sleep(0.05)
        ages = {S.SUCCEEDED: 0.0, S.CANCELLED: 0.0}
        first = await store.prune(ages, 2)
        assert len(first) == 4
        assert set(first) >= {claimed[0].id, claimed[1].id}
        assert set(first) >= {claimed[3].id, claimed[4].id}
        assert await store.prune(ages, 2) == [claimed[2].id]
        assert await store.prune(ages, 2) == []

    async def test_prune_frees_unique_keys(self, store: Store) -> None:
        """A pruned job's unique key may be used again."""
        (job_id,) = await enqueue(store, job(unique_key="reused"))
        gone = Change(job_id, frozenset({S.QUEUED}), S.CANCELLED)
        assert await store.apply([gone]) == [job_id]
        await anyio.sleep(0.05)
        assert await store.prune({S.CANCELLED: 0.0}, 10) == [job_id]
        (again,) = await store.enqueue([job(unique_key="reused")])
        assert again.created and again.id != job_id

    async def test_one_leader_at_a_time(self, store: Store) -> None:
        """One holder leads at a time; it stays leader while it renews; `leader` names it."""
        assert await store.leader() is None
        assert await store.lead("alpha", 10.0)
        assert await store.leader() == "alpha"
        assert not await store.lead("beta", 10.0)
        assert await store.lead("alpha", 10.0)
        assert await store.leader() == "alpha"
        assert not await store.lead("beta", 10.0)
        assert await store.leader() == "alpha"

    async def test_resigning_lets_another_lead(self, store: Store) -> None:
        """After the leader resigns, nobody leads until another holder takes over;
        a resignation by a holder that does not lead changes nothing.
        """
        assert await store.lead("alpha", 10.0)
        await store.resign("beta")
        assert await store.leader() == "alpha"
        await store.resign("alpha")
        assert await store.leader() is None
        assert await store.lead("beta", 10.0)
        assert await store.leader() == "beta"
        assert not await store.lead("alpha", 10.0)
        await store.resign("beta")

    async def test_the_workers_registry(self, store: Store) -> None:
        """Workers are registered (again: refreshed), listed oldest first, beaten,
        and removed; `beat_worker` is False for a worker no longer recorded.
        """
        assert await store.workers() == []
        await store.register_worker(_worker("w-young", age=5))
        await store.register_worker(_worker("w-old", age=50))
        await store.register_worker(_worker("w-young", age=5, running=2, concurrency=8))
        listed = await store.workers()
        assert [w.id for w in listed] == ["w-old", "w-young"]
        young = listed[1]
        assert (young.host, young.pid, young.version) == (f"host-{UNUSUAL}", 4242, "1.2.3")
        assert (young.queues, young.types) == (["default", "reports"], ["contract.echo"])
        assert (young.running, young.concurrency) == (2, 8)
        expected = datetime.now(UTC) - timedelta(seconds=5)
        assert abs((young.started_at - expected).total_seconds()) < 2
        assert await store.beat_worker("w-old", 3)
        assert {w.id: w.running for w in await store.workers()} == {"w-old": 3, "w-young": 2}
        await store.remove_worker("w-old")
        assert [w.id for w in await store.workers()] == ["w-young"]
        assert not await store.beat_worker("w-old", 0)

    async def test_silent_workers_are_reaped(self, store: Store) -> None:
        """`reap_workers` removes the workers silent for longer than given, and returns
        their ids; a reaped worker's beat returns False.
        """
        await store.register_worker(_worker("quiet", age=10))
        await store.register_worker(_worker("busy", age=10))
        await anyio.sleep(1.2)
        assert await store.beat_worker("busy", 1)
        assert await store.reap_workers(60.0) == []
        # "busy" beat a moment ago, "quiet" 1.2 s ago: 0.6 s apart either way, so that a
        # loaded machine's slow statements do not make the one look as silent as the other
        assert await store.reap_workers(0.6) == ["quiet"]
        assert [w.id for w in await store.workers()] == ["busy"]
        assert not await store.beat_worker("quiet", 0)
        first_beat = (await store.workers())[0].heartbeat_at
        await anyio.sleep(0.05)
        assert await store.beat_worker("busy", 0)
        assert (await store.workers())[0].heartbeat_at > first_beat
