"""Limits on each store: concurrency and rate per key hold across workers, a saturated
key holds back nobody else, `Throttled` gives the attempt back and holds the key, and
limits change at run time.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
import sqlalchemy as sa
from pydantic import BaseModel

import brains_jobs as bj
from tests.integration.conftest import running_worker
from tests.support import jobs

pytestmark = pytest.mark.anyio

S = bj.JobStatus


class Call(BaseModel):
    account: str = "a"
    seconds: float = 0.2
    throttle: bool = False


class Done(BaseModel):
    account: str


SPANS: list[tuple[str, float, float]] = []


@bj.job(
    "lim.call",
    max_attempts=2,
    limits=[
        bj.Concurrency("provider", 3),
        bj.Concurrency(lambda inp: f"acct:{inp.account}", 1),
    ],
)
async def call(ctx: bj.JobContext, inp: Call) -> Done:
    """Holds its slot a moment; says when it ran."""
    start = time.monotonic()
    if inp.throttle and ctx.attempt == 1 and not ctx.job_id % 2:
        raise bj.Throttled(retry_after=0.5)
    await anyio.sleep(inp.seconds)
    SPANS.append((inp.account, start, time.monotonic()))
    return Done(account=inp.account)


@bj.job("lim.paced", max_attempts=1, limits=[bj.Rate("paced", 5, per="1s")])
async def paced(ctx: bj.JobContext, inp: Call) -> Done:
    """Starts at most 5 times a second."""
    SPANS.append(("paced", time.monotonic(), time.monotonic()))
    return Done(account=inp.account)


def peak(spans: list[tuple[str, float, float]]) -> int:
    """The most spans open at one moment."""
    points = sorted([(s, 1) for _, s, _ in spans] + [(e, -1) for _, _, e in spans])
    open_now = top = 0
    for _, step in points:
        open_now += step
        top = max(top, open_now)
    return top


@pytest.fixture
async def lrt(database_url: str, tmp_path: Path) -> AsyncIterator[bj.Runtime]:
    SPANS.clear()
    async with bj.Runtime(
        database_url,
        jobs=[*jobs.ALL, call, paced],
        load_entrypoints=False,
        artifacts=str(tmp_path / "artifacts"),
    ) as rt:
        yield rt


async def test_concurrency_limits_hold_across_workers(lrt: bj.Runtime) -> None:
    handles = await lrt.enqueue_many(
        [bj.JobRequest(call, {"account": f"x{i % 4}", "seconds": 0.15}) for i in range(16)]
    )
    async with running_worker(lrt, concurrency=10), running_worker(lrt, concurrency=10):
        for h in handles:
            await h.result(timeout=30)
    assert peak(SPANS) <= 3  # the provider key
    for account in ("x0", "x1", "x2", "x3"):
        assert peak([s for s in SPANS if s[0] == account]) == 1  # one per account
    assert peak(SPANS) == 3  # and the limit is used


async def test_a_saturated_key_holds_back_nobody_else(lrt: bj.Runtime) -> None:
    await lrt.set_limit("provider", concurrency=1)
    slow = await lrt.enqueue_many(call, [{"account": f"s{i}", "seconds": 1.0} for i in range(5)])
    quick = await lrt.enqueue_many(jobs.add, [{"a": i} for i in range(50)])
    started = time.monotonic()
    async with running_worker(lrt, concurrency=4):
        for h in quick:
            await h.result(timeout=10)
        quick_done = time.monotonic() - started
        for h in slow:
            await h.result(timeout=20)
    assert quick_done < 1.5  # long before the five one-second calls have run one by one
    assert peak(SPANS) == 1
    (info,) = [i for i in await lrt.limits() if i.key == "provider"]
    assert (info.concurrency, info.running) == (1, 0)


async def test_a_rate_is_never_exceeded(lrt: bj.Runtime) -> None:
    handles = await lrt.enqueue_many(paced, [{} for _ in range(12)])
    async with running_worker(lrt, concurrency=10), running_worker(lrt, concurrency=10):
        for h in handles:
            await h.result(timeout=30)
    starts = sorted(s for _, s, _ in SPANS)
    for i in range(len(starts) - 5):
        assert starts[i + 5] - starts[i] >= 0.95, "more than 5 starts within a second"


async def test_throttled_gives_the_attempt_back_and_holds_the_key(lrt: bj.Runtime) -> None:
    handles = await lrt.enqueue_many(
        call, [{"account": f"t{i}", "seconds": 0.05, "throttle": True} for i in range(4)]
    )
    async with running_worker(lrt, concurrency=4):
        for h in handles:
            await h.result(timeout=20)
    throttled = [await h.get() for h in handles if not h.id % 2]
    assert throttled
    for job in throttled:
        assert job.attempts == 2 and job.max_attempts == call.max_attempts + 1
        assert job.errors == []
    infos = {i.key: i for i in await lrt.limits()}
    assert infos["provider"].blocked_until is not None


async def test_limits_change_at_run_time(lrt: bj.Runtime) -> None:
    await lrt.set_limit("provider", concurrency=2)
    handles = await lrt.enqueue_many(call, [{"account": f"c{i}", "seconds": 0.2} for i in range(6)])
    async with running_worker(lrt, concurrency=10):
        for h in handles:
            await h.result(timeout=20)
    assert peak(SPANS) == 2


async def test_a_replaced_input_brings_its_own_limit_keys(lrt: bj.Runtime) -> None:
    first = await lrt.enqueue(call, {"account": "one", "seconds": 0}, unique_key="k", delay=60)
    again = await lrt.enqueue(
        call, {"account": "two", "seconds": 0}, unique_key="k", on_conflict="replace"
    )
    assert (again.id, again.replaced) == (first.id, True)
    assert (await lrt.get(first.id)).input["account"] == "two"
    assert "acct:two" in {i.key for i in await lrt.limits()}
    engine = lrt.store.engine  # type: ignore[attr-defined]
    async with engine.connect() as conn:
        stored = (
            await conn.execute(
                sa.text("SELECT limit_keys FROM jobs WHERE id = :id"), {"id": first.id}
            )
        ).scalar_one()
    assert "acct:two" in str(stored) and "acct:one" not in str(stored)


async def test_replace_never_crosses_job_types(lrt: bj.Runtime) -> None:
    first = await lrt.enqueue(jobs.add, {"a": 1}, unique_key="shared", delay=60)
    again = await lrt.enqueue(
        call, {"account": "x", "seconds": 0}, unique_key="shared", on_conflict="replace"
    )
    assert (again.id, again.created, again.replaced) == (first.id, False, False)
    assert (await lrt.get(first.id)).input == {"a": 1, "b": 0}
