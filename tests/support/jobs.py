"""Job types the test suite runs, also loadable as a plugin: `--plugin tests.support.jobs`.

Handlers that must prove exactly-once effects append a line to the ledger file named by
BRAINS_JOBS_TEST_LEDGER: `job_id attempt pid event`.
"""

from __future__ import annotations

import os

import anyio
from pydantic import BaseModel, Field

import brains_jobs as bj


class Numbers(BaseModel):
    a: int
    b: int = 0


class Sum(BaseModel):
    total: int


@bj.job("add", max_attempts=2, backoff=0.01, backoff_cap=0.05)
async def add(ctx: bj.JobContext, inp: Numbers) -> Sum:
    """Add two numbers, reporting progress once."""
    await ctx.progress(0.5, "adding")
    return Sum(total=inp.a + inp.b)


class Flaky(BaseModel):
    fail_times: int = Field(ge=0)
    message: str = "boom"


class Attempt(BaseModel):
    attempt: int


@bj.job("flaky", max_attempts=4, backoff=0.05, backoff_cap=1.0, jitter=True)
async def flaky(ctx: bj.JobContext, inp: Flaky) -> Attempt:
    """Fail the first `fail_times` attempts."""
    if ctx.attempt <= inp.fail_times:
        raise RuntimeError(f"{inp.message} #{ctx.attempt}")
    return Attempt(attempt=ctx.attempt)


class Sleep(BaseModel):
    seconds: float = Field(ge=0)
    ledger: bool = True


class Slept(BaseModel):
    seconds: float
    attempt: int


def _ledger(line: str) -> None:
    path = os.environ.get("BRAINS_JOBS_TEST_LEDGER")
    if path:
        # One write() of a short line with O_APPEND is atomic between processes.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)


@bj.job("sleep", max_attempts=3, backoff=0.05, backoff_cap=0.2, timeout=60)
async def sleep(ctx: bj.JobContext, inp: Sleep) -> Slept:
    """Sleep, reporting progress; records start and finish in the ledger."""
    if inp.ledger:
        _ledger(f"{ctx.job_id} {ctx.attempt} {os.getpid()} start")
    steps = 5
    for i in range(steps):
        await anyio.sleep(inp.seconds / steps)
        await ctx.progress((i + 1) / steps, f"step {i + 1}/{steps}")
    if inp.ledger:
        _ledger(f"{ctx.job_id} {ctx.attempt} {os.getpid()} done")
    return Slept(seconds=inp.seconds, attempt=ctx.attempt)


@bj.job("slow-timeout", max_attempts=2, backoff=0.01, timeout=0.2)
async def slow_timeout(ctx: bj.JobContext, inp: Sleep) -> Slept:
    """Sleeps longer than its timeout allows."""
    await anyio.sleep(inp.seconds)
    return Slept(seconds=inp.seconds, attempt=ctx.attempt)


class Text(BaseModel):
    text: str


@bj.job("permanent", max_attempts=5)
async def permanent(ctx: bj.JobContext, inp: Text) -> Text:
    """Fails with a permanent error: never retried."""
    raise bj.PermanentError(f"cannot process {inp.text!r}")


@bj.job("chain", max_attempts=1)
async def chain(ctx: bj.JobContext, inp: Numbers) -> Sum:
    """Enqueue an `add` follow-up job and return its id as the total."""
    handle = await ctx.enqueue(add, Numbers(a=inp.a, b=inp.b))
    ctx.logger.info("enqueued follow-up %s", handle.id)
    return Sum(total=handle.id)


@bj.job("noop", max_attempts=1)
async def noop(ctx: bj.JobContext, inp: Numbers) -> Sum:
    """Does nothing; for throughput."""
    return Sum(total=inp.a)


class Poison(BaseModel):
    crash: bool = False
    seconds: float = Field(default=0.02, ge=0)


@bj.job("poison", max_attempts=10, backoff=0.05, backoff_cap=0.2, max_crashes=3)
async def poison(ctx: bj.JobContext, inp: Poison) -> Slept:
    """Kills its worker process at once when `crash`; otherwise sleeps a moment. Records
    every start and finish in the ledger.
    """
    _ledger(f"{ctx.job_id} {ctx.attempt} {os.getpid()} start")
    if inp.crash:
        os._exit(1)
    await anyio.sleep(inp.seconds)
    _ledger(f"{ctx.job_id} {ctx.attempt} {os.getpid()} done")
    return Slept(seconds=inp.seconds, attempt=ctx.attempt)


class Limited(BaseModel):
    account: str = "a"
    seconds: float = 0.1
    throttle: bool = False


@bj.job(
    "limited",
    max_attempts=3,
    limits=[
        bj.Concurrency("shared", 4),
        bj.Concurrency(lambda inp: f"acct:{inp.account}", 1),
        bj.Rate("paced", 20, per="1s"),
    ],
)
async def limited(ctx: bj.JobContext, inp: Limited) -> Slept:
    """Runs under limits; records its start and end times (monotonic) in the ledger."""
    import time

    if inp.throttle and ctx.attempt == 1:
        raise bj.Throttled(retry_after=1.0, key="shared")
    start = time.monotonic()
    await anyio.sleep(inp.seconds)
    _ledger(
        f"{ctx.job_id} {ctx.attempt} {os.getpid()} span {start} {time.monotonic()} {inp.account}"
    )
    return Slept(seconds=inp.seconds, attempt=ctx.attempt)


class Collector(BaseModel):
    young_threshold: int
    frozen: int


@bj.job("collector", max_attempts=1)
async def collector(ctx: bj.JobContext, inp: Numbers) -> Collector:
    """How the worker process's garbage collector is set up."""
    import gc

    return Collector(young_threshold=gc.get_threshold()[0], frozen=gc.get_freeze_count())


ALL = [add, flaky, sleep, slow_timeout, permanent, chain, noop, poison, limited, collector]


@bj.hookimpl
def brains_jobs_register_jobs(register: bj.Register) -> None:
    for definition in ALL:
        register(definition)
