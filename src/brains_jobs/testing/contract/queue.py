"""The work-queue role: claiming, leases, start marks, releasing."""

from __future__ import annotations

import json
from typing import Any

import anyio

from ...store import Change, ClaimedJob, Outcome, Store
from ._support import (
    OTHER_TYPE,
    WORKER,
    K,
    S,
    after,
    claim,
    enqueue,
    error,
    get,
    history,
    job,
    running,
    seconds_from_now,
    trail,
)


async def _crash(store: Store, claimed: ClaimedJob) -> None:
    """What the rescuer does to a job whose worker died while running it."""
    change = Change(
        claimed.id,
        frozenset({S.RUNNING}),
        S.QUEUED,
        lease_token=claimed.lease_token,
        crashes_delta=1,
        run_in=0.0,
    )
    assert await store.apply([change]) == [claimed.id]


def _ordering_jobs() -> list[tuple[str, dict[str, Any]]]:
    """Jobs whose best-first order is c, b, d, e, a (by name): d and e differ by id only."""
    earlier = after(-20)
    return [
        ("a", {"priority": 0, "run_at": after(-10)}),
        ("b", {"priority": 5}),
        ("c", {"priority": 5, "run_at": earlier}),
        ("d", {"priority": 0, "run_at": earlier}),
        ("e", {"priority": 0, "run_at": earlier}),
    ]


class WorkQueueContract:
    """`WorkQueue.claim`, `heartbeat`, `mark_started`, `cancel_requested`, `release` and
    `next_ready` (`finish` has a module of its own).
    """

    async def test_claim_takes_priority_then_run_time_then_id(self, store: Store) -> None:
        """Claims take the highest priority first, then the earliest run time, then the
        lowest id.
        """
        spec = _ordering_jobs()
        ids = await enqueue(store, *(job(n, **fields) for n, (_, fields) in enumerate(spec)))
        name = {job_id: letter for job_id, (letter, _) in zip(ids, spec, strict=True)}
        order = []
        for _ in spec:
            (claimed,) = await claim(store, limit=1)
            order.append(name[claimed.id])
        assert order == ["c", "b", "d", "e", "a"]
        assert await claim(store) == []

    async def test_claim_returns_its_batch_best_first(self, store: Store) -> None:
        """One claim of several jobs returns them best first (priority, run time, id)."""
        spec = _ordering_jobs()
        ids = await enqueue(store, *(job(n, **fields) for n, (_, fields) in enumerate(spec)))
        name = {job_id: letter for job_id, (letter, _) in zip(ids, spec, strict=True)}
        claimed = await claim(store, limit=10)
        assert [name[c.id] for c in claimed] == ["c", "b", "d", "e", "a"]

    async def test_claim_takes_at_most_limit(self, store: Store) -> None:
        """A claim leases at most `limit` jobs; a limit of 0 leases none."""
        ids = await enqueue(store, *(job(n) for n in range(5)))
        assert await claim(store, limit=0) == []
        first = await claim(store, limit=2)
        assert [c.id for c in first] == ids[:2]
        rest = await claim(store, limit=10)
        assert sorted(c.id for c in rest) == ids[2:]

    async def test_claim_filters_by_type_and_queue(self, store: Store) -> None:
        """Only jobs of the given types, in the given queues (any queue for None), are
        claimed.
        """
        a, b, c, d = await enqueue(
            store,
            job(1, queue="q1"),
            job(2, queue="q2"),
            job(3, type=OTHER_TYPE, queue="q1"),
            job(4, queue="q3"),
        )
        assert [x.id for x in await claim(store, queues=["q1"])] == [a]
        assert await claim(store, types=["contract.unknown"]) == []
        assert await claim(store, queues=["q9"]) == []
        assert [x.id for x in await claim(store, queues=None)] == [b, d]
        assert [x.id for x in await claim(store, types=[OTHER_TYPE])] == [c]

    async def test_jobs_scheduled_later_are_not_claimed(self, store: Store) -> None:
        """A job whose run time is in the future is not claimed before it."""
        (later,) = await enqueue(store, job(run_at=after(3600)))
        (now,) = await enqueue(store, job())
        assert [c.id for c in await claim(store)] == [now]
        assert await claim(store) == []
        assert (await get(store, later)).status is S.QUEUED

    async def test_claim_counts_an_attempt_and_writes_a_running_event(self, store: Store) -> None:
        """A claim counts an attempt, leases the job to the worker, and writes a
        `status running` event with the new attempt.
        """
        (job_id,) = await enqueue(store, job(5, queue="q", max_attempts=4))
        (claimed,) = await claim(store)
        assert (claimed.id, claimed.type, claimed.queue) == (job_id, "contract.echo", "q")
        assert (claimed.attempt, claimed.max_attempts, claimed.mark_start) == (1, 4, False)
        assert json.loads(claimed.input) == {"n": 5} and claimed.lease_token
        stored = await get(store, job_id)
        assert (stored.status, stored.attempts, stored.worker_id) == (S.RUNNING, 1, WORKER)
        assert stored.started_at is not None
        events = await history(store, job_id)
        assert trail(events) == [
            (job_id, K.STATUS, S.QUEUED, None),
            (job_id, K.STATUS, S.RUNNING, None),
        ]
        assert events[-1].attempt == 1
        retry = Outcome(claimed.id, claimed.lease_token, S.QUEUED, error=error(), retry_in=0.0)
        assert await store.finish([retry]) == []
        (second,) = await claim(store)
        assert (second.id, second.attempt) == (job_id, 2)
        assert second.lease_token != claimed.lease_token
        assert (await history(store, job_id))[-1].attempt == 2

    async def test_concurrent_claims_never_share_a_job(self, store: Store) -> None:
        """Claims running at the same time never lease the same job twice, and between
        them lease every ready job.
        """
        ids = await enqueue(store, *(job(n) for n in range(120)))
        taken: list[int] = []

        async def worker(name: str) -> None:
            while claimed := await claim(store, limit=3, worker_id=name):
                taken.extend(c.id for c in claimed)

        async with anyio.create_task_group() as tg:
            for n in range(12):
                tg.start_soon(worker, f"w{n}")
        assert len(taken) == len(set(taken))
        assert sorted(taken) == ids

    async def test_crashed_jobs_are_claimed_only_isolated(self, store: Store) -> None:
        """A job that crashed a worker (`crashes > 0`) is claimed only with
        `isolated=True`, and an isolated claim takes only such jobs.
        """
        (crashed,) = await running(store)
        await _crash(store, crashed)
        (plain,) = await enqueue(store, job(2))
        assert [c.id for c in await claim(store)] == [plain]
        assert await claim(store) == []
        (plain2,) = await enqueue(store, job(3))
        (alone,) = await claim(store, isolated=True)
        assert (alone.id, alone.attempt) == (crashed.id, 2)
        assert (await get(store, crashed.id)).crashes == 1
        assert await claim(store, isolated=True) == []
        assert [c.id for c in await claim(store)] == [plain2]

    async def test_mark_start_is_handed_to_the_next_claimer(self, store: Store) -> None:
        """A job queued again with `mark_start` is claimed with `mark_start=True` until a
        start is recorded (by `mark_started` or a heartbeat's `started`).
        """
        for record in ("mark_started", "heartbeat"):
            (claimed,) = await running(store)
            change = Change(
                claimed.id,
                frozenset({S.RUNNING}),
                S.QUEUED,
                lease_token=claimed.lease_token,
                attempts_delta=-1,
                mark_start=True,
                run_in=0.0,
            )
            assert await store.apply([change]) == [claimed.id]
            (again,) = await claim(store)
            assert (again.id, again.mark_start, again.attempt) == (claimed.id, True, 1)
            lease = (again.id, again.lease_token)
            if record == "mark_started":
                assert await store.mark_started([lease]) == set()
            else:
                assert await store.heartbeat([lease], 30.0, started=[again.id]) == (set(), set())
            await store.release([lease], "shutdown")
            (third,) = await claim(store)
            assert (third.id, third.mark_start) == (claimed.id, False), record
            await store.release([(third.id, third.lease_token)], "done")
            await store.apply([Change(third.id, frozenset({S.QUEUED}), S.CANCELLED)])

    async def test_mark_started_reports_leases_not_held(self, store: Store) -> None:
        """`mark_started` returns the ids whose lease is no longer held."""
        (a, b) = await running(store, 2)
        held = await store.mark_started([(a.id, a.lease_token), (b.id, "not-the-token")])
        assert held == {b.id}

    async def test_heartbeat_extends_leases(self, store: Store) -> None:
        """A heartbeat extends its leases by `lease` seconds from now; the others expire."""
        kept, left = await running(store, 2, lease=0.2)
        assert await store.heartbeat([(kept.id, kept.lease_token)], 30.0) == (set(), set())
        await anyio.sleep(0.4)
        assert [e.id for e in await store.expired(10)] == [left.id]
        assert await store.heartbeat([(kept.id, kept.lease_token)], 30.0) == (set(), set())

    async def test_heartbeat_reports_lost_leases_and_cancel_requests(self, store: Store) -> None:
        """A heartbeat returns the ids whose lease is lost and those asked to cancel;
        `cancel_requested` reads the latter.
        """
        a, b, c = await running(store, 3)
        ask = Change(a.id, frozenset({S.RUNNING}), S.RUNNING, request_cancel=True)
        assert await store.apply([ask]) == [a.id]
        leases = [(a.id, a.lease_token), (b.id, b.lease_token), (c.id, "stale")]
        assert await store.heartbeat(leases, 30.0) == ({c.id}, {a.id})
        assert await store.cancel_requested([a.id, b.id, c.id]) == {a.id}
        assert await store.cancel_requested([]) == set()
        assert await store.heartbeat([], 30.0) == (set(), set())

    async def test_heartbeat_and_mark_started_record_starts(self, store: Store) -> None:
        """`heartbeat(started=...)` and `mark_started` record that handlers started; the
        expired lease of such a job says `started=True`, of the others False.
        """
        a, b, c = await running(store, 3, lease=0.2)
        assert await store.heartbeat([(a.id, a.lease_token)], 0.1, started=[a.id]) == (
            set(),
            set(),
        )
        assert await store.mark_started([(b.id, b.lease_token)]) == set()
        await anyio.sleep(0.5)
        started = {e.id: e.started for e in await store.expired(10)}
        assert started == {a.id: True, b.id: True, c.id: False}

    async def test_release_gives_the_attempt_back(self, store: Store) -> None:
        """`release` queues the job again at once and gives the attempt back: its
        allowance grows by one and attempt numbers never repeat. It writes a `status
        queued` event with the reason.
        """
        (claimed,) = await running(store)
        seq = await store.last_seq()
        await store.release([(claimed.id, claimed.lease_token)], "shutting down ✓")
        stored = await get(store, claimed.id)
        assert (stored.status, stored.worker_id, stored.finished_at) == (S.QUEUED, None, None)
        assert (stored.attempts, stored.max_attempts) == (1, claimed.max_attempts + 1)
        events = await history(store, after_seq=seq)
        assert trail(events) == [(claimed.id, K.STATUS, S.QUEUED, "shutting down ✓")]
        assert events[0].attempt == 1
        (again,) = await claim(store)
        assert (again.id, again.attempt) == (claimed.id, 2)
        assert again.max_attempts == claimed.max_attempts + 1

    async def test_release_of_a_cancel_requested_job_cancels_it(self, store: Store) -> None:
        """A released job whose cancel was requested ends `cancelled`."""
        (claimed,) = await running(store)
        ask = Change(claimed.id, frozenset({S.RUNNING}), S.RUNNING, request_cancel=True)
        assert await store.apply([ask]) == [claimed.id]
        seq = await store.last_seq()
        await store.release([(claimed.id, claimed.lease_token)], "shutdown")
        stored = await get(store, claimed.id)
        assert stored.status is S.CANCELLED and stored.finished_at is not None
        assert trail(await history(store, after_seq=seq)) == [
            (claimed.id, K.STATUS, S.CANCELLED, "shutdown")
        ]
        assert await claim(store) == []

    async def test_release_with_a_stale_token_changes_nothing(self, store: Store) -> None:
        """`release` ignores a lease it does not hold."""
        (claimed,) = await running(store)
        seq = await store.last_seq()
        await store.release([(claimed.id, "stale")], "shutdown")
        stored = await get(store, claimed.id)
        assert (stored.status, stored.attempts) == (S.RUNNING, 1)
        assert await history(store, after_seq=seq) == []

    async def test_next_ready_is_the_earliest_run_time(self, store: Store) -> None:
        """`next_ready` is the earliest run time of a queued job of the given types and
        queues, None when there is none.
        """
        assert await store.next_ready(None, ["contract.echo"]) is None
        await enqueue(store, job(run_at=after(600), queue="q"), job(run_at=after(60), queue="q"))
        await enqueue(store, job(run_at=after(30), queue="other"))
        await enqueue(store, job(type=OTHER_TYPE, run_at=after(10)))
        soonest = await store.next_ready(["q"], ["contract.echo"])
        assert soonest is not None and 50 < seconds_from_now(soonest) <= 61
        anywhere = await store.next_ready(None, ["contract.echo"])
        assert anywhere is not None and 20 < seconds_from_now(anywhere) <= 31
        assert await store.next_ready(["q"], ["contract.unknown"]) is None
