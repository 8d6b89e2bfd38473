"""What operators and applications need around jobs: the worker of each attempt,
tracking jobs, resubmissions, versions, usage, lifecycle callbacks, and statistics.
"""

from __future__ import annotations

import json

import anyio

from ...store import Change, NewJob, Outcome, Store
from ._support import (
    TYPE,
    K,
    S,
    claim,
    claim_ids,
    enqueue,
    get,
    history,
    job,
    running,
    trail,
)

RUNNING = frozenset({S.RUNNING})


class OperationsContract:
    """Attempts, tracking jobs, versions, usage, callbacks and stats on a store."""

    async def test_a_claim_names_its_worker_in_the_running_event(self, store: Store) -> None:
        """The `running` event of a claim names the claiming worker as its actor, and the
        claimed job carries the version it was enqueued under.
        """
        (job_id,) = await enqueue(store, job(version=3))
        seq = await store.last_seq()
        (claimed,) = await claim(store, worker_id="worker-7")
        assert claimed.version == 3
        (event,) = await history(store, after_seq=seq)
        assert (event.status, event.actor, event.attempt) == (S.RUNNING, "worker-7", 1)
        assert (await get(store, job_id)).version == 3

    async def test_a_tracking_job_starts_running_with_its_ttl_as_lease(self, store: Store) -> None:
        """A job inserted with `track_ttl` is `running` and tracked at once (attempt 1,
        its start known), writes `queued` then `running` events, is never claimed, and
        is expired once its ttl passes without a report.
        """
        (job_id,) = await enqueue(store, job(track_ttl=0.3))
        stored = await get(store, job_id)
        assert (stored.status, stored.tracked, stored.track_ttl) == (S.RUNNING, True, 0.3)
        assert stored.attempts == 1
        assert [e.status for e in await history(store, job_id)] == [S.QUEUED, S.RUNNING]
        assert await claim(store) == []
        assert [e.id for e in await store.expired(10)] == []
        await anyio.sleep(0.5)
        (expired,) = await store.expired(10)
        assert (expired.id, expired.tracked, expired.started) == (job_id, True, True)

    async def test_a_report_renews_the_lease_and_changes_the_token(self, store: Store) -> None:
        """A change with `lease_for` renews a running job's lease from now; one with
        `new_token` makes changes fenced by the old token miss; `progress` sets the
        job's progress and writes a `progress` event.
        """
        (job_id,) = await enqueue(store, job(track_ttl=0.2))
        await anyio.sleep(0.4)
        (expired,) = await store.expired(10)
        report = Change(
            job_id,
            RUNNING,
            S.RUNNING,
            message="half way",
            progress=0.5,
            lease_for=30.0,
            new_token="fresh-token",
        )
        seq = await store.last_seq()
        assert await store.apply([report]) == [job_id]
        assert await store.expired(10) == []
        stale = Change(job_id, RUNNING, S.FAILED, lease_token=expired.lease_token)
        assert await store.apply([stale]) == []
        stored = await get(store, job_id)
        assert (stored.status, stored.progress, stored.progress_message) == (
            S.RUNNING,
            0.5,
            "half way",
        )
        events = await history(store, after_seq=seq)
        assert trail(events) == [(job_id, K.PROGRESS, S.RUNNING, "half way")]
        assert events[0].progress == 0.5

    async def test_apply_adds_usage_and_sets_input_and_version(self, store: Store) -> None:
        """`usage` in a change is added to the job's, name by name; `input` and
        `version` replace the job's.
        """
        (job_id,) = await enqueue(store, job())
        queued = frozenset({S.QUEUED})
        first = Change(job_id, queued, S.QUEUED, usage=json.dumps({"tokens": 10, "cents": 1.5}))
        second = Change(
            job_id,
            queued,
            S.QUEUED,
            usage=json.dumps({"tokens": 5, "calls": 1}),
            input=json.dumps({"n": 9}),
            version=2,
        )
        assert await store.apply([first]) == [job_id]
        assert await store.apply([second]) == [job_id]
        stored = await get(store, job_id)
        assert stored.usage == {"tokens": 15, "cents": 1.5, "calls": 1}
        assert (stored.input, stored.version) == ({"n": 9}, 2)

    async def test_finish_adds_usage_flags_callbacks_and_stores_upgrades(
        self, store: Store
    ) -> None:
        """An outcome's usage is added to the job's, its upgraded input and version are
        stored, and its callback flag makes the job due a callback until
        `callbacks_done`; a rejected late outcome adds nothing.
        """
        a, b = await running(store, 2)
        done = [
            Outcome(
                a.id,
                a.lease_token,
                S.SUCCEEDED,
                output="1",
                usage=json.dumps({"cents": 2}),
                callback=True,
                input=json.dumps({"n": 1, "new": True}),
                version=2,
            ),
            Outcome(b.id, "stale", S.SUCCEEDED, output="2", usage='{"cents": 5}', callback=True),
        ]
        assert await store.finish(done) == [b.id]
        stored = await get(store, a.id)
        assert (stored.usage, stored.input, stored.version) == (
            {"cents": 2},
            {"n": 1, "new": True},
            2,
        )
        assert (await get(store, b.id)).usage == {}
        assert await store.callbacks_due([TYPE], 60.0, 10) == []  # not quiet long enough
        due = await store.callbacks_due([TYPE], 0.0, 10)
        assert [j.id for j in due] == [a.id]
        assert await store.callbacks_due(["other.type"], 0.0, 10) == []
        await store.callbacks_done([a.id])
        assert await store.callbacks_due([TYPE], 0.0, 10) == []

    async def test_a_job_due_a_callback_is_taken_once_per_quiet_period(self, store: Store) -> None:
        """`callbacks_due` leaves the jobs it returned to their taker for `quiet_for`
        seconds: a second caller at once gets none of them.
        """
        (claimed,) = await running(store)
        outcome = Outcome(claimed.id, claimed.lease_token, S.FAILED, callback=True)
        assert await store.finish([outcome]) == []
        await anyio.sleep(0.3)
        assert [j.id for j in await store.callbacks_due([TYPE], 0.2, 10)] == [claimed.id]
        assert await store.callbacks_due([TYPE], 0.2, 10) == []

    async def test_resubmissions_keep_their_original(self, store: Store) -> None:
        """`original_id` is stored with the new job (which is queued as usual)."""
        (first,) = await enqueue(store, job(1))
        (second,) = await enqueue(store, job(1, original_id=first))
        stored = await get(store, second)
        assert (stored.original_id, stored.status) == (first, S.QUEUED)
        assert (await get(store, first)).original_id is None

    async def test_follow_up_jobs_keep_their_version(self, store: Store) -> None:
        """A follow-up job written with a success keeps the version it was made with."""
        (claimed,) = await running(store)
        (reserved,) = await store.reserve_ids(1)
        follow = NewJob(TYPE, "default", 0, "{}", 1, id=reserved, version=4)
        outcome = Outcome(
            claimed.id, claimed.lease_token, S.SUCCEEDED, output="null", spawned=(follow,)
        )
        assert await store.finish([outcome]) == []
        assert (await get(store, reserved)).version == 4

    async def test_get_many_returns_the_jobs_that_exist(self, store: Store) -> None:
        """`get_many` returns the jobs among the ids that exist, by id."""
        a, b = await enqueue(store, job(1), job(2))
        assert [j.id for j in await store.get_many([b, a + 1000, a])] == [a, b]
        assert await store.get_many([]) == []

    async def test_stats_sum_usage_and_time_the_succeeded_jobs(self, store: Store) -> None:
        """`stats` sums usage by type and by owner (no owner: "") and gives run time
        percentiles of succeeded jobs by type.
        """
        ids = await enqueue(store, job(1, owner="ann"), job(2, owner="ann"), job(3))
        claimed = await claim_ids(store, ids)
        await anyio.sleep(0.05)
        outcomes = [
            Outcome(c.id, c.lease_token, S.SUCCEEDED, output="null", usage=json.dumps(u))
            for c, u in zip(
                claimed, [{"cents": 2, "tokens": 10}, {"cents": 3}, {"cents": 0.5}], strict=True
            )
        ]
        assert await store.finish(outcomes) == []
        stats = await store.stats()
        assert stats.usage == {TYPE: {"cents": 5.5, "tokens": 10}}
        assert stats.usage_by_owner == {"ann": {"cents": 5, "tokens": 10}, "": {"cents": 0.5}}
        durations = stats.durations[TYPE]
        assert durations.count == 3
        assert 0.04 <= durations.p50 <= durations.p95 <= durations.max < 30
        assert stats.by_type[TYPE][S.SUCCEEDED] == 3
