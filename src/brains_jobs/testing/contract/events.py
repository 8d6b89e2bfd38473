"""The event-log role: reading the audit trail in sequence order."""

from __future__ import annotations

from ...store import NewEvent, Store
from ._support import LONG, TYPE, UNUSUAL, K, enqueue, history, job, running


class EventLogContract:
    """`EventLog.events_after` and `EventLog.last_seq`."""

    async def test_last_seq_is_zero_without_events(self, store: Store) -> None:
        """An empty store has no events and a `last_seq` of 0."""
        assert await store.last_seq() == 0
        assert await store.events_after(0) == []

    async def test_events_after_reads_in_sequence_order(self, store: Store) -> None:
        """`events_after(seq)` returns the events numbered above `seq`, in ascending
        order, at most `limit` of them.
        """
        await enqueue(store, *(job(n) for n in range(5)))
        events = await history(store)
        seqs = [e.seq for e in events]
        assert len(events) == 5 and seqs == sorted(set(seqs))
        assert await store.events_after(seqs[1]) == events[2:]
        assert await store.events_after(seqs[0], limit=2) == events[1:3]
        assert await store.events_after(seqs[-1]) == []

    async def test_events_after_filters_by_job(self, store: Store) -> None:
        """`events_after(seq, job_id=...)` returns only that job's events."""
        a, b = await enqueue(store, job(1), job(2))
        await store.finish([], [NewEvent(b, TYPE, "log", 0, message="note")])
        only_b = await store.events_after(0, job_id=b)
        assert [(e.job_id, e.kind) for e in only_b] == [(b, K.STATUS), (b, K.LOG)]
        assert [e.job_id for e in await store.events_after(0, job_id=a)] == [a]
        assert await store.events_after(only_b[0].seq, job_id=b) == only_b[1:]

    async def test_last_seq_covers_every_committed_event(self, store: Store) -> None:
        """After writes, `last_seq` is at least the highest event's number, and no event
        lies beyond it.
        """
        await running(store, 3)
        highest = (await history(store))[-1].seq
        last = await store.last_seq()
        assert last >= highest
        assert await store.events_after(last) == []

    async def test_text_round_trips_in_event_messages_and_data(self, store: Store) -> None:
        """Non-ASCII text, emoji and long strings come back unchanged from a handler's
        event messages and data.
        """
        (claimed,) = await running(store)
        seq = await store.last_seq()
        data = {"text": UNUSUAL, "long": LONG, UNUSUAL: ["🚀", 1.5, None]}
        events = [
            NewEvent(claimed.id, TYPE, "log", 1, message=UNUSUAL, data=data),
            NewEvent(claimed.id, TYPE, "progress", 1, progress=0.5, message=LONG),
        ]
        assert await store.finish([], events) == []
        written = await history(store, after_seq=seq)
        assert [(e.message, e.data) for e in written] == [(UNUSUAL, data), (LONG, None)]
