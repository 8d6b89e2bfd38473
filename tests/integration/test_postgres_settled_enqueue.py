"""A job whose enqueue takes a second statement (a resubmission's link to its original,
a tracking job's start and lease) is never visible, nor claimable, between the two.

The second statement is held still on purpose: a trigger installed here makes it wait
for an advisory lock the test holds. Whatever the timing, a worker claiming in that
moment must find nothing; once the lock goes, the job appears whole.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import pytest

import brains_jobs as bj
from tests.conftest import pg_url
from tests.support import jobs, postgres

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

HOLD = 740_021  # the advisory lock the held statement waits for


@pytest.fixture
async def rt(pg_schema: str, tmp_path: Path) -> AsyncIterator[bj.Runtime]:
    async with bj.Runtime(
        pg_url(pg_schema),
        jobs=jobs.ALL,
        load_entrypoints=False,
        artifacts=str(tmp_path / "artifacts"),
    ) as rt:
        yield rt


@pytest.fixture
async def admin(rt: bj.Runtime, pg_schema: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the test's own; the store's second statements wait for it."""
    async with postgres.admin(pg_schema) as conn:
        q = f'"{pg_schema}"'
        await conn.execute(
            f"""
            CREATE FUNCTION {q}.hold_second_statement() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM pg_advisory_xact_lock({HOLD});  -- before the statement locks a row
                RETURN NULL;
            END $$;
            CREATE TRIGGER hold_second_statement BEFORE UPDATE OF original_id ON {q}.jobs
                FOR EACH STATEMENT EXECUTE FUNCTION {q}.hold_second_statement();
            """
        )
        yield conn


async def held_still(
    rt: bj.Runtime,
    admin: asyncpg.Connection,
    enqueue: Callable[[], Awaitable[int]],
    types: list[str],
) -> tuple[list[Any], int, int]:
    """Run `enqueue` with its second statement held; return what a worker could claim
    and how many jobs another session saw while it was held, and the new job's id.
    """
    before = int(await admin.fetchval("SELECT max(id) FROM jobs"))
    await admin.execute("SELECT pg_advisory_lock($1)", HOLD)
    new_id: list[int] = []
    async with anyio.create_task_group() as tg:

        async def run() -> None:
            new_id.append(await enqueue())

        tg.start_soon(run)
        with anyio.fail_after(10):
            while not await admin.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                " AND objid = $1 AND NOT granted",
                HOLD,
            ):
                await anyio.sleep(0.01)
        claimed = await rt.store.claim(
            worker_id="probe", queues=None, types=types, limit=10, lease=30
        )
        seen = int(
            await admin.fetchval(
                "SELECT count(*) FROM jobs WHERE id > $1",
                before,
            )
        )
        await admin.execute("SELECT pg_advisory_unlock($1)", HOLD)
    return claimed, seen, new_id[0]


async def test_a_resubmission_is_never_seen_unlinked(
    rt: bj.Runtime, admin: asyncpg.Connection
) -> None:
    original = await rt.enqueue(jobs.add, {"a": 1, "b": 2})
    await rt.store.claim(worker_id="w", queues=None, types=["add"], limit=1, lease=30)

    async def resubmit() -> int:
        return (await rt.resubmit(original.id, actor="ops")).id

    claimed, seen, new_id = await held_still(rt, admin, resubmit, ["add"])
    assert claimed == [] and seen == 0
    job = await rt.get(new_id)
    assert (job.status, job.original_id) == (bj.JobStatus.QUEUED, original.id)
    (again,) = await rt.store.claim(worker_id="w", queues=None, types=["add"], limit=1, lease=30)
    assert again.id == new_id


async def test_a_tracking_job_is_never_seen_queued(
    rt: bj.Runtime, admin: asyncpg.Connection
) -> None:
    await rt.enqueue(jobs.add, {"a": 0})  # so that max(id) is not null

    async def track() -> int:
        return (await rt.track("import", {"file": "a.csv"}, ttl=30)).id

    claimed, seen, new_id = await held_still(rt, admin, track, ["import", "add"])
    assert [c.type for c in claimed] == ["add"] and seen == 0
    job = await rt.get(new_id)
    assert (job.status, job.attempts) == (bj.JobStatus.RUNNING, 1)
