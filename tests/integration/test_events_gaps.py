"""Events of transactions that commit out of order still reach live subscribers, in order.

Sequence numbers are taken at insert; a transaction that inserted earlier may commit
later. Only PostgreSQL lets two writers overlap like that.
"""

from __future__ import annotations

import anyio
import pytest

import brains_jobs as bj
from tests.conftest import pg_url
from tests.support import jobs

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


async def test_a_late_commit_is_delivered_in_order(pg_schema: str, tmp_path) -> None:
    async with bj.Runtime(
        pg_url(pg_schema), jobs=jobs.ALL, load_entrypoints=False, artifacts=str(tmp_path)
    ) as rt:
        engine = rt.store.engine  # type: ignore[attr-defined]
        async with rt.events(kinds={bj.EventKind.STATUS}) as events:
            seen: list[bj.JobEvent] = []

            async def collect() -> None:
                async for event in events:
                    seen.append(event)

            async with anyio.create_task_group() as tg:
                tg.start_soon(collect)
                async with engine.connect() as conn, conn.begin():
                    early = await rt.enqueue(jobs.add, {"a": 1}, connection=conn)
                    late = await rt.enqueue(jobs.add, {"a": 2})  # commits first
                    await anyio.sleep(0.3)
                    assert seen == [], "an event after the open transaction's was delivered early"
                with anyio.fail_after(5):
                    while len(seen) < 2:
                        await anyio.sleep(0.01)
                tg.cancel_scope.cancel()
    assert [(e.job_id, e.status) for e in seen] == [
        (early.id, bj.JobStatus.QUEUED),
        (late.id, bj.JobStatus.QUEUED),
    ]
    assert seen[0].seq < seen[1].seq
