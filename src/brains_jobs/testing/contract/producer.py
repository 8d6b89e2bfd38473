"""The producer role: inserting jobs, unique keys, reserved ids."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from ...exceptions import DuplicateJob
from ...store import Enqueued, Store
from ._support import (
    LONG,
    OTHER_TYPE,
    UNUSUAL,
    K,
    S,
    after,
    claim_ids,
    enqueue,
    get,
    history,
    job,
    seconds_from_now,
    succeed,
    trail,
)


class ProducerContract:
    """`Producer.enqueue` and `Producer.reserve_ids`."""

    async def test_enqueue_gives_ascending_ids_in_input_order(self, store: Store) -> None:
        """Every job of a batch is created, with ids ascending in the batch's order."""
        result = await store.enqueue([job(n) for n in range(5)])
        assert [e.created for e in result] == [True] * 5
        ids = [e.id for e in result]
        assert ids == sorted(ids) and len(set(ids)) == 5
        for n, job_id in enumerate(ids):
            stored = await get(store, job_id)
            assert stored.input == {"n": n}
            assert (stored.status, stored.attempts) == (S.QUEUED, 0)
        assert await store.enqueue([]) == []

    async def test_enqueue_stores_every_field(self, store: Store) -> None:
        """Type, queue, priority, attempts, tags, metadata, owner, parent and run time
        are stored as given.
        """
        (parent,) = await enqueue(store, job())
        run_at = after(3600)
        (job_id,) = await enqueue(
            store,
            job(
                7,
                type=OTHER_TYPE,
                queue="reports",
                priority=-4,
                max_attempts=9,
                run_at=run_at,
                unique_key="k-fields",
                tags=("a", "b"),
                metadata={"tenant": 12, "nested": {"x": [1, 2]}},
                owner="alice",
                parent_id=parent,
            ),
        )
        stored = await get(store, job_id)
        assert (stored.type, stored.queue, stored.priority) == (OTHER_TYPE, "reports", -4)
        assert (stored.max_attempts, stored.unique_key) == (9, "k-fields")
        assert stored.tags == ["a", "b"]
        assert stored.metadata == {"tenant": 12, "nested": {"x": [1, 2]}}
        assert (stored.owner, stored.parent_id) == ("alice", parent)
        assert abs((stored.run_at - run_at).total_seconds()) < 0.01
        assert stored.finished_at is None and stored.worker_id is None
        assert not stored.cancel_requested and stored.crashes == 0

    async def test_enqueue_without_run_at_is_ready_now(self, store: Store) -> None:
        """A job without a run time may run at once (run time about now)."""
        (job_id,) = await enqueue(store, job())
        assert abs(seconds_from_now((await get(store, job_id)).run_at)) < 5

    async def test_each_inserted_job_gets_one_queued_event(self, store: Store) -> None:
        """Enqueueing writes one `status queued` event per inserted job, attempt 0."""
        ids = await enqueue(store, job(1), job(2))
        events = await history(store)
        assert trail(events) == [(i, K.STATUS, S.QUEUED, None) for i in ids]
        assert [(e.attempt, e.job_type) for e in events] == [(0, "contract.echo")] * 2

    async def test_unique_key_repeated_in_a_batch_is_inserted_once(self, store: Store) -> None:
        """A key repeated inside one batch is inserted once; the repeat gets its id with
        `created=False` and no event.
        """
        result = await store.enqueue([job(1, unique_key="k"), job(2, unique_key="k"), job(3)])
        first, repeat, other = result
        assert first.created and other.created and first.id < other.id
        assert repeat == Enqueued(first.id, created=False)
        assert (await get(store, first.id)).input == {"n": 1}
        assert [e.job_id for e in await history(store)] == [first.id, other.id]

    async def test_a_unique_key_is_held_until_its_job_finishes(self, store: Store) -> None:
        """A key held by a waiting, queued or running job is not inserted again: the
        holder's id comes back with `created=False`. Once the holder finished, the key
        is free, unless the holder keeps it until pruned (`unique_keep`).
        """
        (holder,) = await enqueue(store, job(1, unique_key="held"))
        assert await store.enqueue([job(2, unique_key="held")]) == [Enqueued(holder, False)]
        (claimed,) = await claim_ids(store, [holder])
        assert await store.enqueue([job(2, unique_key="held")]) == [Enqueued(holder, False)]
        assert await store.holders(["held", "nobody"]) == {"held": holder}
        await succeed(store, claimed)
        assert await store.holders(["held"]) == {}
        result = await store.enqueue([job(3), job(4, unique_key="held"), job(5, unique_key="x")])
        assert all(r.created for r in result) and result[1].id != holder
        kept = replace(job(6, unique_key="kept"), unique_keep=True)
        (keeper,) = await enqueue(store, kept)
        taken = await claim_ids(store, [*(r.id for r in result), keeper])
        await succeed(store, taken[-1])
        assert await store.enqueue([job(7, unique_key="kept")]) == [Enqueued(keeper, False)]

    async def test_a_repeat_can_replace_a_queued_holders_input(self, store: Store) -> None:
        """A repeat with `on_conflict="replace"` gives a queued holder its input and run
        time, with an `action` event; `reject` raises `DuplicateJob` and writes nothing.
        """
        (holder,) = await enqueue(store, job(1, unique_key="k"))
        seq = await store.last_seq()
        repeat = replace(job(2, unique_key="k"), on_conflict="replace")
        assert await store.enqueue([repeat]) == [Enqueued(holder, False, replaced=True)]
        assert (await get(store, holder)).input == {"n": 2}
        assert [e.kind for e in await history(store, after_seq=seq)] == [K.ACTION]
        with pytest.raises(DuplicateJob):
            await store.enqueue([job(3), replace(job(4, unique_key="k"), on_conflict="reject")])
        assert (await store.stats()).by_status == {S.QUEUED: 1}

    async def test_reserved_ids_are_unique_and_never_given_to_inserts(self, store: Store) -> None:
        """`reserve_ids` gives distinct ids that no later insert without an id takes."""
        reserved = await store.reserve_ids(3)
        assert len(set(reserved)) == 3
        ids = await enqueue(store, *(job(n) for n in range(5)))
        more = await store.reserve_ids(2)
        later = await enqueue(store, job(9))
        every = [*reserved, *ids, *more, *later]
        assert len(set(every)) == len(every)
        for job_id in reserved + more:
            assert await store.get(job_id) is None
        assert await store.reserve_ids(0) == []

    async def test_text_round_trips_in_job_fields(self, store: Store) -> None:
        """Non-ASCII text, emoji and long strings come back unchanged from the input,
        tags, metadata, owner and unique key.
        """
        payload = {"text": UNUSUAL, "long": LONG, "list": [UNUSUAL, "🚀"]}
        (job_id,) = await enqueue(
            store,
            job(
                input=json.dumps(payload, ensure_ascii=False),
                unique_key=f"key-{UNUSUAL}",
                tags=(UNUSUAL, "🏷️"),
                metadata={UNUSUAL: LONG, "emoji": "🎉"},
                owner=UNUSUAL,
            ),
        )
        stored = await get(store, job_id)
        assert stored.input == payload
        assert stored.unique_key == f"key-{UNUSUAL}"
        assert stored.tags == [UNUSUAL, "🏷️"]
        assert stored.metadata == {UNUSUAL: LONG, "emoji": "🎉"}
        assert stored.owner == UNUSUAL
        repeat = await store.enqueue([job(unique_key=f"key-{UNUSUAL}")])
        assert repeat == [Enqueued(job_id, created=False)]
