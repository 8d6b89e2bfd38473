"""The work-queue role, finishing: outcomes, handler events, follow-up jobs."""

from __future__ import annotations

import json

from ...store import Change, NewEvent, NewJob, Outcome, Store
from ...store.audit import LATE_RESULT_DATA, late_result
from ._support import (
    LONG,
    OTHER_TYPE,
    TYPE,
    UNUSUAL,
    K,
    S,
    claim,
    claim_ids,
    enqueue,
    error,
    get,
    history,
    job,
    running,
    seconds_from_now,
    trail,
)


class FinishContract:
    """`WorkQueue.finish`."""

    async def test_success_stores_the_output(self, store: Store) -> None:
        """A success stores its output, ends the lease, sets the finish time and full
        progress, and writes a `status succeeded` event with the attempt.
        """
        (claimed,) = await running(store)
        seq = await store.last_seq()
        outcome = Outcome(claimed.id, claimed.lease_token, S.SUCCEEDED, output='{"total": 3}')
        assert await store.finish([outcome]) == []
        stored = await get(store, claimed.id)
        assert (stored.status, stored.output, stored.attempts) == (S.SUCCEEDED, {"total": 3}, 1)
        assert stored.finished_at is not None and stored.progress == 1.0
        events = await history(store, after_seq=seq)
        assert trail(events) == [(claimed.id, K.STATUS, S.SUCCEEDED, None)]
        assert events[0].attempt == 1
        assert await store.finish([outcome]) == [claimed.id]  # the lease ended with it
        assert await store.finish([]) == []

    async def test_events_come_in_audit_order(self, store: Store) -> None:
        """`finish` writes the handlers' events first, in their order, then a status
        event per outcome with its message, then a warning per rejected late outcome;
        the events of different jobs in job-id order.
        """
        a, b, c = await running(store, 3)
        seq = await store.last_seq()
        events = [
            NewEvent(a.id, TYPE, "progress", 1, progress=0.5, message="half"),
            NewEvent(b.id, TYPE, "log", 1, message="hello", data={"level": "info"}),
        ]
        outcomes = [
            Outcome(b.id, b.lease_token, S.SUCCEEDED, output="1", message="b done", attempt=1),
            Outcome(a.id, a.lease_token, S.FAILED, error=error(), message="a failed", attempt=1),
            Outcome(c.id, "stale", S.SUCCEEDED, output="2", attempt=1),
        ]
        assert await store.finish(outcomes, events) == [c.id]
        written = await history(store, after_seq=seq)
        assert trail(written) == [
            (a.id, K.PROGRESS, None, "half"),
            (b.id, K.LOG, None, "hello"),
            (a.id, K.STATUS, S.FAILED, "a failed"),
            (b.id, K.STATUS, S.SUCCEEDED, "b done"),
            (c.id, K.LOG, None, late_result("succeeded")),
        ]
        assert [e.attempt for e in written[:4]] == [1, 1, 1, 1]
        assert (written[0].progress, written[1].data) == (0.5, {"level": "info"})
        assert written[4].data == LATE_RESULT_DATA
        assert {e.job_type for e in written} == {TYPE}

    async def test_a_stale_lease_token_is_rejected(self, store: Store) -> None:
        """An outcome whose lease token is not the job's is rejected, its id returned,
        and the job left as it is.
        """
        (claimed,) = await running(store)
        late = Outcome(claimed.id, "stale", S.FAILED, error=error())
        assert await store.finish([late]) == [claimed.id]
        stored = await get(store, claimed.id)
        assert (stored.status, stored.errors) == (S.RUNNING, [])
        good = Outcome(claimed.id, claimed.lease_token, S.SUCCEEDED, output="true")
        assert await store.finish([good]) == []
        assert (await get(store, claimed.id)).output is True

    async def test_a_retry_is_queued_again_later(self, store: Store) -> None:
        """A `queued` outcome puts the job back with its error, to run `retry_in`
        seconds later; `next_ready` reports that time.
        """
        (claimed,) = await running(store)
        retry = Outcome(
            claimed.id, claimed.lease_token, S.QUEUED, error=error(1, "flaky"), retry_in=30.0
        )
        assert await store.finish([retry]) == []
        stored = await get(store, claimed.id)
        assert (stored.status, stored.attempts, stored.finished_at) == (S.QUEUED, 1, None)
        assert [(e.attempt, e.message) for e in stored.errors] == [(1, "flaky")]
        assert 25 < seconds_from_now(stored.run_at) <= 31
        assert await claim(store) == []
        ready = await store.next_ready(None, [TYPE])
        assert ready is not None and 25 < seconds_from_now(ready) <= 31
        assert (await history(store, claimed.id))[-1].status is S.QUEUED

    async def test_a_failure_is_final(self, store: Store) -> None:
        """A `failed` outcome ends the job with its error and a finish time."""
        (claimed,) = await running(store)
        failed = Outcome(claimed.id, claimed.lease_token, S.FAILED, error=error(1, "bad"))
        assert await store.finish([failed]) == []
        stored = await get(store, claimed.id)
        assert stored.status is S.FAILED and stored.finished_at is not None
        assert [e.type for e in stored.errors] == ["ValueError"]
        assert stored.output is None

    async def test_cancel_requested_jobs_end_cancelled_unless_they_succeed(
        self, store: Store
    ) -> None:
        """A job whose cancel was requested ends `cancelled` when its attempt failed or
        asked for a retry, and `succeeded` when it succeeded.
        """
        a, b, c = await running(store, 3)
        asks = [
            Change(x.id, frozenset({S.RUNNING}), S.RUNNING, request_cancel=True) for x in (a, b, c)
        ]
        assert await store.apply(asks) == [a.id, b.id, c.id]
        outcomes = [
            Outcome(a.id, a.lease_token, S.FAILED, error=error()),
            Outcome(b.id, b.lease_token, S.QUEUED, error=error(), retry_in=0.0),
            Outcome(c.id, c.lease_token, S.SUCCEEDED, output="3"),
        ]
        assert await store.finish(outcomes) == []
        statuses = [(await get(store, x.id)).status for x in (a, b, c)]
        assert statuses == [S.CANCELLED, S.CANCELLED, S.SUCCEEDED]
        assert (await get(store, b.id)).finished_at is not None
        assert await claim(store) == []

    async def test_follow_up_jobs_are_inserted_only_with_a_success(self, store: Store) -> None:
        """The `spawned` jobs of a written success are inserted with their reserved ids
        and a `queued` event; those of a failure or a rejected outcome are not.
        """
        a, b, c = await running(store, 3)
        r1, r2, r3, r4 = await store.reserve_ids(4)

        def child(job_id: int, parent: int) -> tuple[NewJob, ...]:
            return (job(job_id, id=job_id, parent_id=parent, queue="children"),)

        outcomes = [
            Outcome(
                a.id,
                a.lease_token,
                S.SUCCEEDED,
                output="1",
                spawned=(*child(r1, a.id), *child(r4, a.id)),
            ),
            Outcome(b.id, b.lease_token, S.FAILED, error=error(), spawned=child(r2, b.id)),
            Outcome(c.id, "stale", S.SUCCEEDED, output="3", spawned=child(r3, c.id)),
        ]
        assert await store.finish(outcomes) == [c.id]
        for spawned in (r1, r4):
            stored = await get(store, spawned)
            assert (stored.status, stored.parent_id, stored.queue) == (S.QUEUED, a.id, "children")
            assert stored.input == {"n": spawned}
            assert trail(await history(store, spawned)) == [(spawned, K.STATUS, S.QUEUED, None)]
        assert await store.get(r2) is None and await store.get(r3) is None
        assert sorted(x.id for x in await claim(store, queues=["children"])) == [r1, r4]

    async def test_a_follow_up_job_with_a_taken_unique_key_is_skipped(self, store: Store) -> None:
        """A follow-up job whose unique key is taken is not inserted; the success is."""
        (holder,) = await enqueue(store, job(type=OTHER_TYPE, unique_key="once"))
        (claimed,) = await running(store)
        (reserved,) = await store.reserve_ids(1)
        spawned = (job(id=reserved, unique_key="once"),)
        done = Outcome(claimed.id, claimed.lease_token, S.SUCCEEDED, output="1", spawned=spawned)
        assert await store.finish([done]) == []
        assert (await get(store, claimed.id)).status is S.SUCCEEDED
        assert await store.get(reserved) is None
        assert (await get(store, holder)).type == OTHER_TYPE

    async def test_progress_events_update_the_job(self, store: Store) -> None:
        """Progress events, written alone or with outcomes, set the job's progress and
        message to the last report.
        """
        a, b = await running(store, 2)
        reports = [
            NewEvent(a.id, TYPE, "progress", 1, progress=0.25, message="a quarter"),
            NewEvent(b.id, TYPE, "progress", 1, progress=0.1),
            NewEvent(a.id, TYPE, "progress", 1, progress=0.5, message="half ✓"),
        ]
        assert await store.finish([], reports) == []
        stored = await get(store, a.id)
        assert (stored.status, stored.progress, stored.progress_message) == (
            S.RUNNING,
            0.5,
            "half ✓",
        )
        assert (await get(store, b.id)).progress == 0.1
        progress = [(e.job_id, e.progress) for e in await history(store) if e.kind is K.PROGRESS]
        assert progress == [(a.id, 0.25), (b.id, 0.1), (a.id, 0.5)]
        retry = Outcome(b.id, b.lease_token, S.QUEUED, error=error(), retry_in=60.0)
        late = NewEvent(b.id, TYPE, "progress", 1, progress=0.75, message="three quarters")
        assert await store.finish([retry], [late]) == []
        stored = await get(store, b.id)
        assert (stored.status, stored.progress, stored.progress_message) == (
            S.QUEUED,
            0.75,
            "three quarters",
        )

    async def test_text_round_trips_in_outputs_and_errors(self, store: Store) -> None:
        """Non-ASCII text, emoji and long strings come back unchanged from an output, an
        error and a status message.
        """
        (one, two) = await claim_ids(store, await enqueue(store, job(1), job(2)))
        output = {"text": UNUSUAL, "long": LONG}
        outcomes = [
            Outcome(
                one.id,
                one.lease_token,
                S.SUCCEEDED,
                output=json.dumps(output, ensure_ascii=False),
                message=UNUSUAL,
            ),
            Outcome(
                two.id, two.lease_token, S.FAILED, error=error(1, LONG), message=f"✗ {UNUSUAL}"
            ),
        ]
        assert await store.finish(outcomes) == []
        assert (await get(store, one.id)).output == output
        failed = await get(store, two.id)
        assert [e.message for e in failed.errors] == [LONG]
        messages = [e.message for e in await history(store) if e.status in (S.SUCCEEDED, S.FAILED)]
        assert messages == [UNUSUAL, f"✗ {UNUSUAL}"]
