"""The result writer on each store: a batch the database refuses is split until the row
that fails is alone, and that row's job fails with the reason; the others are written.
(PostgreSQL refuses NUL in text; SQLite stores what it is given, and reads it back.)
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import brains_jobs as bj
from brains_jobs.store import Outcome
from brains_jobs.worker.results import ResultWriter
from tests.support import jobs

pytestmark = pytest.mark.anyio

S = bj.JobStatus


async def test_one_refused_row_does_not_block_the_others(rt: bj.Runtime) -> None:
    handles = await rt.enqueue_many(jobs.add, [{"a": i} for i in range(9)])
    claimed = await rt.store.claim(worker_id="w", queues=None, types=["add"], limit=9, lease=30)
    assert len(claimed) == 9
    # Text no store can hold, written past the handler-side cleaning: NUL for
    # PostgreSQL, a lone surrogate for SQLite.
    bad = "nul \x00 and \ud800 surrogate"
    writer = ResultWriter(rt.store, "w")
    for job in claimed:
        output = f'{{"total": {job.id}}}'
        message = bad if job.id == handles[4].id else None
        writer.add(Outcome(job.id, job.lease_token, S.SUCCEEDED, output=output, message=message))
    assert await writer.flush()
    assert writer.idle
    final = {h.id: await h.get() for h in handles}
    assert len((await rt.list()).jobs) == 9
    odd = final.pop(handles[4].id)
    assert {j.status for j in final.values()} == {S.SUCCEEDED}
    if rt.url.startswith("sqlite"):
        assert odd.status is S.SUCCEEDED
    else:
        assert odd.status is S.FAILED
        assert [e.type for e in odd.errors] == ["StoreRejected"]


async def test_results_the_database_takes_slowly_hold_back_the_claims(
    rt: bj.Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database that takes results more slowly than the handlers make them: claims
    wait for the writer, so the buffer of unwritten outcomes stays at most twice the
    worker's claim capacity (here 2 lanes + 2 prefetched), and every job ends.
    """
    handles = await rt.enqueue_many(jobs.noop, [{"a": i} for i in range(120)])
    worker = rt.worker(concurrency=2, prefetch=2, burst=True)
    finish = rt.store.finish
    peak = 0

    async def slow_finish(outcomes: Any, events: Any) -> Any:
        nonlocal peak
        peak = max(peak, len(outcomes) + worker.writer.backlog)
        await anyio.sleep(0.02)  # a write takes longer than many no-op jobs
        return await finish(outcomes, events)

    monkeypatch.setattr(rt.store, "finish", slow_finish)
    with anyio.fail_after(60):
        await worker.run()
    assert {(await h.get()).status for h in handles} == {S.SUCCEEDED}
    assert 0 < peak <= 2 * (2 + 2)
