"""SQLite across processes, printed as one JSON object: a web app and its worker.

    python benchmarks/sqlite_processes.py [--jobs 300] [--spacing-ms 20] [--idle 30]

This process enqueues jobs one at a time and subscribes to their events; a worker
process (`--concurrency`) runs them. Times are `time.monotonic()`, one clock for every
process of the machine.

- pickup_ms:         enqueue call -> handler start in the worker process
- event_ms:          `ctx.progress()` in the worker -> the event in this process's
                     subscription (`rt.events()`)
- idle_cpu_percent:  the worker's CPU (from /proc) over `--idle` seconds, after
                     `--quiet` seconds without work
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import anyio
from measures import percentiles
from pydantic import BaseModel

import brains_jobs as bj


class Probe(BaseModel):
    i: int


class Started(BaseModel):
    at: float


@bj.job("bench.probe", max_attempts=1)
async def probe(ctx: bj.JobContext, inp: Probe) -> Started:
    """Notes when it started, then reports progress with the time it did."""
    at = time.monotonic()
    await ctx.progress(0.5, repr(time.monotonic()))
    return Started(at=at)


def runtime(url: str) -> bj.Runtime:
    return bj.Runtime(url, jobs=[probe], load_entrypoints=False)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def work(url: str, concurrency: int) -> None:
    async with runtime(url) as rt:
        await rt.run_worker(concurrency)


async def main(args: argparse.Namespace) -> dict[str, object]:
    folder = Path(tempfile.mkdtemp(prefix="bj-processes-"))
    url = f"sqlite+aiosqlite:///{folder / 'jobs.db'}"
    result: dict[str, object] = {
        "store": "sqlite",
        "python": platform.python_version(),
        "jobs": args.jobs,
        "spacing_ms": args.spacing_ms,
        "concurrency": args.concurrency,
    }
    async with runtime(url) as rt:
        worker = await anyio.open_process(
            [sys.executable, __file__, "--worker", url, "--concurrency", str(args.concurrency)],
            stdout=None,
            stderr=None,
        )
        try:
            with anyio.fail_after(60):  # the worker is up once it ran a first job
                await (await rt.enqueue(probe, Probe(i=-1))).result()
            arrivals: dict[int, tuple[float, float]] = {}

            async def listen(subscription: bj.Subscription) -> None:
                async for event in subscription:
                    if event.message is not None:
                        arrivals[event.job_id] = (float(event.message), time.monotonic())

            sent: dict[int, float] = {}
            handles = []
            async with anyio.create_task_group() as tg:
                tg.start_soon(listen, rt.events(kinds=["progress"]))
                await anyio.sleep(0.5)
                start = time.monotonic()
                for i in range(args.jobs):
                    await anyio.sleep(
                        max(0.0, start + i * args.spacing_ms / 1000 - time.monotonic())
                    )
                    t = time.monotonic()
                    handle = await rt.enqueue(probe, Probe(i=i))
                    sent[handle.id] = t
                    handles.append(handle)
                with anyio.fail_after(60):
                    started = {h.id: (await h.result()).at for h in handles}
                    while not sent.keys() <= arrivals.keys():
                        await anyio.sleep(0.01)
                tg.cancel_scope.cancel()
            result["pickup_ms"] = percentiles([(started[j] - t) * 1000 for j, t in sent.items()])
            result["event_ms"] = percentiles(
                [(got - said) * 1000 for j, (said, got) in arrivals.items() if j in sent]
            )
            if args.idle > 0:
                await anyio.sleep(args.quiet)
                cpu0, t0 = cpu_seconds(worker.pid), time.monotonic()
                await anyio.sleep(args.idle)
                cpu1, t1 = cpu_seconds(worker.pid), time.monotonic()
                result["idle_quiet_s"] = args.quiet
                result["idle_cpu_percent"] = round(100 * (cpu1 - cpu0) / (t1 - t0), 2)
        finally:
            worker.terminate()
            with anyio.fail_after(30):
                await worker.wait()
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--spacing-ms", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--quiet", type=float, default=35.0, help="seconds before --idle")
    parser.add_argument("--idle", type=float, default=30.0, help="0: no idle measurement")
    parser.add_argument("--worker", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("BRAINS_JOBS_LOG_LEVEL", "warning")
    if args.worker:
        anyio.run(work, args.worker, args.concurrency)
    else:
        print(json.dumps(anyio.run(main, args)), file=sys.stdout)
