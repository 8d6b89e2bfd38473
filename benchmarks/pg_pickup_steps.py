"""Where a pick-up's time goes on PostgreSQL, step by step across two processes, printed
as one JSON object.

    python benchmarks/pg_pickup_steps.py [--dsn postgresql://postgres@127.0.0.1/test]
        [--jobs 200] [--spacing-ms 20] [--concurrency 10]

This process enqueues one no-op job every `spacing` ms, as the shared harness's latency
scenario does; a worker process (this script again, with `--worker`) runs them. The
worker wraps four of its own steps to take the time (`time.perf_counter`, one clock
for both processes on Linux): the LISTEN connection's work notification, the end of
the claim loop's idle wait, the claim statement sent and answered, the claimed jobs
handed to the lanes; the handler notes its start. Printed are the median microseconds
of each step:

- `enqueue_call`: `await rt.enqueue(job, input)`, in this process;
- `notified_before_return`: how long before the enqueue call returned the worker heard
  the notification (the commit wakes both at once);
- `notification_to_claim_loop`: from the notification to the claim loop running again;
- `claim_loop_to_claim_sent`: from there to the claim statement handed to asyncpg;
- `claim_statement`: the claim's round trip (its `running` audit row and commit);
- `rows_to_lanes`: from its rows to the jobs in the lanes' queue;
- `lanes_to_handler`: from there to the handler's first line;
- `total`: from the enqueue call to the handler's first line (the harness's pick-up).

`cold` compares steps of a few microseconds run back to back with the same run 20 ms
apart, as they run on a pick-up: the enqueue's `Enqueuer.prepare`, and making an
`anyio.Event` and an `asyncio.Event`. The schema is dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import time
import uuid
from typing import Any

import anyio
import asyncpg
from pydantic import BaseModel

import brains_jobs as bj
from brains_jobs.enqueueing import Enqueuer
from brains_jobs.registry import Registry

STEPS = ("notified", "resumed", "claim_sent", "rows", "claimed", "started")
MARKS: dict[int, dict[str, float]] = {}  # job id -> step -> time (worker process)


class Tick(BaseModel):
    i: int


class Done(BaseModel):
    pass


@bj.job("pickup_tick")
async def tick(ctx: bj.JobContext, inp: Tick) -> Done:
    MARKS.setdefault(ctx.job_id, {})["started"] = time.perf_counter()
    return Done()


def _instrument() -> None:
    """Wrap the worker's steps; each claim's marks go to the jobs it claimed."""
    from brains_jobs.store.postgres import connection, wakeups
    from brains_jobs.worker import claiming

    now: dict[str, float] = {}
    on_work = wakeups.PostgresWakeups._on_work
    idle_wait = claiming.Claiming._idle_wait
    claim = claiming.Claiming._claim
    fetch = connection.PostgresBase.fetch

    def noted_on_work(self: Any, *args: Any) -> None:
        now["notified"] = time.perf_counter()
        on_work(self, *args)

    async def noted_idle_wait(self: Any) -> None:
        await idle_wait(self)
        now["resumed"] = time.perf_counter()

    async def noted_fetch(self: Any, what: str, *args: Any, **options: Any) -> Any:
        if what != "claim":
            return await fetch(self, what, *args, **options)
        now["claim_sent"] = time.perf_counter()
        rows = await fetch(self, what, *args, **options)
        now["rows"] = time.perf_counter()
        return rows

    async def noted_claim(self: Any, *args: Any, **options: Any) -> Any:
        entries = await claim(self, *args, **options)
        claimed = time.perf_counter()
        for entry in entries or ():
            MARKS.setdefault(entry.job.id, {}).update(now, claimed=claimed)
        if entries:
            now.clear()  # a later claim without a notification of its own is not measured
        return entries

    wakeups.PostgresWakeups._on_work = noted_on_work  # type: ignore[method-assign]
    claiming.Claiming._idle_wait = noted_idle_wait  # type: ignore[method-assign]
    claiming.Claiming._claim = noted_claim  # type: ignore[method-assign]
    connection.PostgresBase.fetch = noted_fetch  # type: ignore[method-assign]


async def worker(url: str, concurrency: int) -> None:
    _instrument()
    async with bj.Runtime(url, jobs=[tick], load_entrypoints=False) as rt:
        bj.tune_gc_for_worker()
        running = rt.worker(concurrency=concurrency)

        async def stop_when_asked() -> None:
            await anyio.to_thread.run_sync(sys.stdin.readline)
            print(json.dumps({str(k): v for k, v in MARKS.items()}), flush=True)
            running.stop()

        print("ready", flush=True)
        await asyncio.gather(running.run(), stop_when_asked())


async def pickups(url: str, jobs: int, spacing: float, concurrency: int) -> dict[str, int]:
    calls: dict[int, tuple[float, float]] = {}
    async with bj.Runtime(url, jobs=[tick], load_entrypoints=False) as rt:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--worker",
            url,
            "--concurrency",
            str(concurrency),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert child.stdin is not None and child.stdout is not None
        try:
            assert (await child.stdout.readline()).strip() == b"ready"
            for i in range(-20, jobs):  # the first 20 warm both processes up
                await asyncio.sleep(spacing)
                began = time.perf_counter()
                handle = await rt.enqueue(tick, Tick(i=i))
                if i >= 0:
                    calls[handle.id] = (began, time.perf_counter())
            await asyncio.sleep(0.5)
            child.stdin.write(b"report\n")
            await child.stdin.drain()
            report = json.loads(await child.stdout.readline())
            marks = {int(k): v for k, v in report.items()}
        finally:
            child.stdin.close()
            await asyncio.wait_for(child.wait(), 30)
    steps: dict[str, list[float]] = {}
    for job_id, (began, returned) in calls.items():
        m = marks.get(job_id, {})
        if not all(step in m for step in STEPS):
            continue  # claimed by a poll or with others, not by its own notification
        for name, seconds in (
            ("enqueue_call", returned - began),
            ("notified_before_return", returned - m["notified"]),
            ("notification_to_claim_loop", m["resumed"] - m["notified"]),
            ("claim_loop_to_claim_sent", m["claim_sent"] - m["resumed"]),
            ("claim_statement", m["rows"] - m["claim_sent"]),
            ("rows_to_lanes", m["claimed"] - m["rows"]),
            ("lanes_to_handler", m["started"] - m["claimed"]),
            ("total", m["started"] - began),
        ):
            steps.setdefault(name, []).append(seconds)
    medians = {name: round(statistics.median(v) * 1e6) for name, v in steps.items()}
    return {**medians, "jobs_measured": len(steps.get("total", []))}


async def cold(rounds: int = 100) -> dict[str, dict[str, float]]:
    registry = Registry()
    registry.add(tick)
    enqueuer = Enqueuer(registry, max_payload=2**20)
    inp = Tick(i=1)
    steps = {
        "prepare": lambda: enqueuer.prepare(tick, inp, {}),
        "anyio_event": anyio.Event,
        "asyncio_event": asyncio.Event,
    }
    times: dict[str, dict[str, list[int]]] = {k: {"apart": [], "back_to_back": []} for k in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            await asyncio.sleep(0.02)
            began = time.perf_counter_ns()
            step()
            times[name]["apart"].append(time.perf_counter_ns() - began)
            began = time.perf_counter_ns()
            step()
            times[name]["back_to_back"].append(time.perf_counter_ns() - began)
    return {
        name: {way: round(statistics.median(v) / 1000, 1) for way, v in ways.items()}
        for name, ways in times.items()
    }


async def main(dsn: str, jobs: int, spacing: float, concurrency: int) -> dict[str, Any]:
    schema = f"bj_pickup_{uuid.uuid4().hex[:8]}"
    url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1) + f"?schema={schema}"
    logging.getLogger("brains_jobs").setLevel(logging.WARNING)
    try:
        steps = await pickups(url, jobs, spacing, concurrency)
        return {"steps_us": steps, "cold_us": await cold()}
    finally:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--spacing-ms", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--worker", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(worker(args.worker, args.concurrency))
    else:
        print(
            json.dumps(
                asyncio.run(main(args.dsn, args.jobs, args.spacing_ms / 1000, args.concurrency))
            )
        )
