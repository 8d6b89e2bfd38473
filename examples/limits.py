"""Limits: how many jobs of a key run at once, and how many start per second, over every
worker.

Shows:
- `bj.Concurrency("api", 2)` on a job type, and a second key computed from the input
  (`lambda inp: f"acct:{inp.account}"`, one at a time per account), holding across two
  workers with eight slots each: the handlers count how many run at once;
- `bj.Rate("quotes", 5, per="1s")`: starts spaced out, whatever the number of workers;
- a handler raising `bj.Throttled(retry_after=...)`: the job runs again later without
  using an attempt, and its key is held meanwhile for every worker;
- `rt.set_limit` changing a key's settings at run time, and `rt.limits()` listing them.

Run it:

    python examples/limits.py

It uses an SQLite file in a temporary directory, or the database given by
`BRAINS_JOBS_DATABASE_URL` (for example `postgresql+asyncpg://user@host/db?schema=demo`).
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from functools import partial

import anyio
from pydantic import BaseModel

import brains_jobs as bj

# -- job types ------------------------------------------------------------------------

# What the handlers measure: jobs running now and the most at once, overall and per account.
running: Counter[str] = Counter()
peaks: Counter[str] = Counter()


class Call(BaseModel):
    account: str
    n: int


class Answer(BaseModel):
    account: str
    n: int


@bj.job(
    "example.call-api",
    max_attempts=3,
    limits=[bj.Concurrency("api", 2), bj.Concurrency(lambda inp: f"acct:{inp.account}", 1)],
)
async def call_api(ctx: bj.JobContext, inp: Call) -> Answer:
    """Call a provider that allows two calls at once, one per account."""
    for key in ("api", f"acct:{inp.account}"):
        running[key] += 1
        peaks[key] = max(peaks[key], running[key])
    try:
        await anyio.sleep(0.05)
    finally:
        for key in ("api", f"acct:{inp.account}"):
            running[key] -= 1
    return Answer(account=inp.account, n=inp.n)


class Symbol(BaseModel):
    symbol: str


class Quote(BaseModel):
    symbol: str
    attempt: int


@bj.job("example.quote", max_attempts=3, limits=[bj.Rate("quotes", 5, per="1s")])
async def quote(ctx: bj.JobContext, inp: Symbol) -> Quote:
    """Ask for a quote: at most 5 a second; the provider says "slow down" once."""
    if inp.symbol == "BUSY" and ctx.attempt == 1:
        # An HTTP 429, say: try again in a moment, and keep every worker off the key.
        raise bj.Throttled(retry_after=0.3)
    return Quote(symbol=inp.symbol, attempt=ctx.attempt)


# -- the application ------------------------------------------------------------------


async def run_workers(rt: bj.Runtime, count: int) -> None:
    """Run `count` workers side by side until the queue is empty (as separate processes
    would: the limits are kept in the database, not in a worker).
    """
    async with anyio.create_task_group() as tg:
        for _ in range(count):
            tg.start_soon(partial(rt.run_worker, concurrency=8, burst=True))


async def main(url: str, artifacts: str) -> None:
    async with bj.Runtime(
        url, jobs=[call_api, quote], load_entrypoints=False, artifacts=artifacts
    ) as rt:
        # Twelve calls for three accounts, sixteen slots in two workers.
        calls = await rt.enqueue_many(
            call_api, [Call(account="abc"[i % 3], n=i) for i in range(12)]
        )
        await run_workers(rt, 2)
        done = [await h.result() for h in calls]
        print(f"{len(done)} calls done; at most {peaks['api']} at once")
        print(f"api: never more than 2 at once: {peaks['api'] <= 2}")
        per_account = max(peaks[f"acct:{a}"] for a in "abc")
        print(f"accounts: never more than 1 at once each: {per_account <= 1}")

        # Ten quotes at 5 a second; one of them is throttled by the provider first.
        symbols = ["BUSY", *(f"S{i}" for i in range(9))]
        quotes = await rt.enqueue_many(quote, [Symbol(symbol=s) for s in symbols])
        await run_workers(rt, 2)
        # When each was claimed: the moments the rate was checked against.
        claimed = sorted([(await h.get()).started_at.timestamp() for h in quotes])
        busiest = max(sum(1 for t in claimed if s <= t < s + 0.999) for s in claimed)
        print(f"quotes: {len(claimed)} started over {claimed[-1] - claimed[0]:.1f} s")
        print(f"quotes: never more than 5 starts within a second: {busiest <= 5}")
        busy = await quotes[0].get()
        print(
            f"BUSY: {busy.status.value} on attempt {(await quotes[0].result()).attempt},"
            f" attempts={busy.attempts} max_attempts={busy.max_attempts} errors={len(busy.errors)}"
        )

        # Settings change at run time, for every worker, from its next claim.
        await rt.set_limit("api", concurrency=4)
        await rt.set_limit("quotes", rate=100, per="1m", burst=10)
        for info in await rt.limits():
            throttled = " (was throttled)" if info.blocked_until else ""
            print(
                f"limit {info.key}: concurrency={info.concurrency} rate={info.rate}"
                f" per={info.per} burst={info.burst} running={info.running}{throttled}"
            )


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        url = os.environ.get("BRAINS_JOBS_DATABASE_URL") or f"sqlite+aiosqlite:///{tmp}/jobs.db"
        anyio.run(main, url, os.path.join(tmp, "artifacts"))
