"""The result writer on each store: a batch the database refuses is split until the row
that fails is alone, and that row's job fails with the reason; the others are written.
(PostgreSQL refuses NUL in text; SQLite stores what it is given, and reads it back.)
"""

from __future__ import annotations

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
