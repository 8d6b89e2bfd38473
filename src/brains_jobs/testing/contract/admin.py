"""The admin role: reading jobs and applying decided changes."""

from __future__ import annotations

import anyio
import pytest

from ...store import Change, JobFilter, Outcome, Store
from ._support import (
    OTHER_TYPE,
    UNUSUAL,
    K,
    S,
    claim,
    enqueue,
    error,
    get,
    history,
    job,
    running,
    succeed,
    trail,
)

RUNNING = frozenset({S.RUNNING})
QUEUED = frozenset({S.QUEUED})


class AdminContract:
    """`Admin.apply` and the reads."""

    async def test_get_of_an_unknown_id_is_none(self, store: Store) -> None:
        """`get` returns None for an id no job has."""
        (job_id,) = await enqueue(store, job())
        assert await store.get(job_id + 1000) is None
        assert (await get(store, job_id)).id == job_id

    async def test_apply_is_fenced_by_status(self, store: Store) -> None:
        """A change applies only to a job in one of its expected statuses; the others are
        left as they are, without events, and their ids are not returned.
        """
        queued, other = await enqueue(store, job(1), job(2))
        seq = await store.last_seq()
        changes = [
            Change(queued, RUNNING, S.CANCELLED, actor="x"),
            Change(other, frozenset({S.QUEUED, S.WAITING}), S.CANCELLED, actor="x"),
            Change(other + 1000, QUEUED, S.CANCELLED),
        ]
        assert await store.apply(changes) == [other]
        assert (await get(store, queued)).status is S.QUEUED
        assert (await get(store, other)).status is S.CANCELLED
        assert [e.job_id for e in await history(store, after_seq=seq)] == [other]
        assert await store.apply([]) == []

    async def test_apply_is_fenced_by_lease_token(self, store: Store) -> None:
        """A change with a lease token applies only while the job holds that lease."""
        (claimed,) = await running(store)
        stale = Change(claimed.id, RUNNING, S.QUEUED, lease_token="stale", run_in=0.0)
        assert await store.apply([stale]) == []
        assert (await get(store, claimed.id)).status is S.RUNNING
        good = Change(claimed.id, RUNNING, S.QUEUED, lease_token=claimed.lease_token, run_in=0.0)
        assert await store.apply([good]) == [claimed.id]
        assert (await get(store, claimed.id)).status is S.QUEUED
        assert await store.apply([good]) == []

    async def test_apply_returns_the_applied_ids_sorted(self, store: Store) -> None:
        """`apply` returns the ids it applied, in ascending order."""
        a, b, c = await enqueue(store, job(1), job(2), job(3))
        changes = [Change(i, QUEUED, S.CANCELLED) for i in (c, a, b)]
        assert await store.apply(changes) == [a, b, c]

    async def test_a_status_change_writes_a_status_event(self, store: Store) -> None:
        """A change of status writes one `status` event with the change's message and
        actor, and the attempt count after the change.
        """
        (claimed,) = await running(store)
        seq = await store.last_seq()
        change = Change(
            claimed.id,
            RUNNING,
            S.QUEUED,
            lease_token=claimed.lease_token,
            attempts_delta=-1,
            run_in=0.0,
            message=f"given back {UNUSUAL}",
            actor="rescuer",
        )
        assert await store.apply([change]) == [claimed.id]
        events = await history(store, after_seq=seq)
        assert trail(events) == [(claimed.id, K.STATUS, S.QUEUED, f"given back {UNUSUAL}")]
        assert (events[0].actor, events[0].attempt) == ("rescuer", 0)

    async def test_a_change_that_keeps_the_status_expects_only_that_status(
        self, store: Store
    ) -> None:
        """A `Change` either keeps a job's status (and expects only that status) or
        moves it out of the expected ones; one mixing both is refused when it is made,
        so a store always knows whether a change writes a `status` or an `action` event.
        """
        with pytest.raises(ValueError, match="must expect only queued"):
            Change(1, frozenset({S.QUEUED, S.RUNNING}), S.QUEUED, message="back")
        (claimed,) = await running(store)
        seq = await store.last_seq()
        change = Change(
            claimed.id,
            frozenset({S.RUNNING}),
            S.QUEUED,
            run_in=0.0,
            message="back",
            actor="admin",
        )
        assert await store.apply([change]) == [claimed.id]
        assert (await get(store, claimed.id)).status is S.QUEUED
        events = await history(store, after_seq=seq)
        assert [(e.kind, e.status, e.actor) for e in events] == [(K.STATUS, S.QUEUED, "admin")]

    async def test_an_unchanged_status_writes_an_action_event(self, store: Store) -> None:
        """A change that keeps the status writes an `action` event when it names an
        actor or a message, and no event otherwise.
        """
        (claimed,) = await running(store)
        (queued,) = await enqueue(store, job(2))
        seq = await store.last_seq()
        ask = Change(
            claimed.id,
            RUNNING,
            S.RUNNING,
            request_cancel=True,
            message="cancel requested",
            actor="alice ✓",
        )
        assert await store.apply([ask]) == [claimed.id]
        assert await store.apply([Change(queued, QUEUED, S.QUEUED, priority=7)]) == [queued]
        assert await store.apply([Change(queued, QUEUED, S.QUEUED, message="bumped")]) == [queued]
        events = await history(store, after_seq=seq)
        assert [(e.job_id, e.kind, e.status, e.message, e.actor) for e in events] == [
            (claimed.id, K.ACTION, S.RUNNING, "cancel requested", "alice ✓"),
            (queued, K.ACTION, S.QUEUED, "bumped", None),
        ]
        assert events[0].attempt == 1
        assert (await get(store, claimed.id)).cancel_requested
        assert (await get(store, queued)).priority == 7

    async def test_final_statuses_set_the_finish_time(self, store: Store) -> None:
        """A change to a final status sets the finish time and ends the lease; a
        change to `succeeded` stores its output and full progress.
        """
        (claimed,) = await running(store)
        (queued,) = await enqueue(store, job(2))
        done = Change(
            claimed.id, RUNNING, S.SUCCEEDED, lease_token=claimed.lease_token, output='{"ok": 1}'
        )
        gone = Change(queued, QUEUED, S.CANCELLED, error=error(0, "not wanted"))
        assert await store.apply([done, gone]) == sorted([claimed.id, queued])
        succeeded = await get(store, claimed.id)
        assert (succeeded.status, succeeded.output, succeeded.progress) == (
            S.SUCCEEDED,
            {"ok": 1},
            1.0,
        )
        assert succeeded.finished_at is not None
        cancelled = await get(store, queued)
        assert cancelled.finished_at is not None
        assert [e.message for e in cancelled.errors] == ["not wanted"]
        late = Outcome(claimed.id, claimed.lease_token, S.FAILED, error=error())
        assert await store.finish([late]) == [claimed.id]

    async def test_queued_again_clears_the_last_run(self, store: Store) -> None:
        """A change back to `queued` clears the output, finish time, worker and cancel
        request, and sets the fields it names (attempts, queue, priority, run time).
        """
        (claimed,) = await running(store)
        await succeed(store, claimed, output='{"old": true}')
        change = Change(
            claimed.id,
            frozenset({S.SUCCEEDED, S.FAILED}),
            S.QUEUED,
            run_in=0.0,
            max_attempts=7,
            priority=9,
            queue="again",
            crashes_delta=2,
            message="retried by request",
            actor="bob",
        )
        assert await store.apply([change]) == [claimed.id]
        stored = await get(store, claimed.id)
        assert (stored.status, stored.output, stored.finished_at) == (S.QUEUED, None, None)
        assert (stored.worker_id, stored.cancel_requested) == (None, False)
        assert (stored.max_attempts, stored.priority, stored.queue) == (7, 9, "again")
        assert (stored.attempts, stored.crashes) == (1, 2)
        (again,) = await claim(store, isolated=True)
        assert (again.id, again.attempt, again.queue) == (claimed.id, 2, "again")
        ask = Change(again.id, RUNNING, S.RUNNING, request_cancel=True)
        assert await store.apply([ask]) == [again.id]
        back = Change(again.id, RUNNING, S.QUEUED, lease_token=again.lease_token, run_in=60.0)
        assert await store.apply([back]) == [again.id]
        assert not (await get(store, again.id)).cancel_requested

    async def test_list_jobs_newest_first_by_pages_and_filters(self, store: Store) -> None:
        """`list_jobs` returns matching jobs newest first, a page at a time."""
        ids = await enqueue(
            store,
            job(1, tags=("red",), owner="ann"),
            job(2, type=OTHER_TYPE, queue="q2"),
            job(3, tags=("red", "blue")),
            job(4, owner="ann"),
        )
        first = await store.list_jobs(JobFilter(), limit=3, cursor=None)
        assert [j.id for j in first.jobs] == ids[::-1][:3] and first.next_cursor is not None
        rest = await store.list_jobs(JobFilter(), limit=3, cursor=first.next_cursor)
        assert [j.id for j in rest.jobs] == [ids[0]] and rest.next_cursor is None

        async def listed(filters: JobFilter) -> list[int]:
            return [j.id for j in (await store.list_jobs(filters, limit=10, cursor=None)).jobs]

        assert await listed(JobFilter(type=OTHER_TYPE)) == [ids[1]]
        assert await listed(JobFilter(queue="q2")) == [ids[1]]
        assert await listed(JobFilter(tag="red")) == [ids[2], ids[0]]
        assert await listed(JobFilter(owner="ann")) == [ids[3], ids[0]]
        await store.apply([Change(ids[3], QUEUED, S.CANCELLED)])
        assert await listed(JobFilter(status=S.CANCELLED)) == [ids[3]]

    async def test_counts_and_the_oldest_queued_job(self, store: Store) -> None:
        """`stats` counts by type and status, `pending_count` the queued and running
        jobs, `oldest_queued` the creation time of the oldest queued job.
        """
        assert await store.oldest_queued() is None
        assert await store.pending_count() == 0
        (first,) = await enqueue(store, job(1))
        await anyio.sleep(0.01)
        second, _ = await enqueue(store, job(2), job(3, type=OTHER_TYPE))
        assert [c.id for c in await claim(store, limit=1)] == [first]
        stats = await store.stats()
        assert stats.by_type == {
            "contract.echo": {S.QUEUED: 1, S.RUNNING: 1},
            OTHER_TYPE: {S.QUEUED: 1},
        }
        assert await store.pending_count() == 3
        assert await store.oldest_queued() == (await get(store, second)).created_at
