"""SQLite throughput and latency of brains-jobs, printed as one JSON object.

    python benchmarks/sqlite_bench.py [--jobs 20000] [--concurrency 10] [--single 2000]

- enqueue_single_jobs_per_s: `rt.enqueue()` one job at a time (one transaction each)
- enqueue_bulk_jobs_per_s:   `rt.enqueue_many()` in chunks of 1,000
- drain_jobs_per_s:          one worker (in-process) runs N no-op jobs to completion,
                             results and audit-trail events written, from the first claim
                             until the store reports nothing queued or running
- latency_ms:                enqueue -> handler start, idle worker, one job at a time
- claim_100_ms_at_*_queued:  with `--deep N`: the median time of a claim of 100 jobs
                             with 10,000 and with N jobs queued

Default configuration: audit trail, leases, heartbeats and events all on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from measures import claim_ms, pct
from pydantic import BaseModel

import brains_jobs as bj


class Item(BaseModel):
    i: int
    t: float = 0.0


class Done(BaseModel):
    i: int


STARTED: dict[int, float] = {}


@bj.job("bench.noop", max_attempts=1)
async def noop(ctx: bj.JobContext, item: Item) -> Done:
    """Does nothing but note when it started."""
    STARTED[item.i] = time.perf_counter()
    return Done(i=item.i)


async def main(args: argparse.Namespace) -> dict[str, object]:
    folder = Path(tempfile.mkdtemp(prefix="bj-bench-"))
    url = f"sqlite+aiosqlite:///{folder / 'bench.db'}"
    result: dict[str, object] = {
        "store": "sqlite",
        "python": platform.python_version(),
        "jobs": args.jobs,
        "concurrency": args.concurrency,
    }
    async with bj.Runtime(url, jobs=[noop], load_entrypoints=False, artifacts=str(folder)) as rt:
        t0 = time.perf_counter()
        for i in range(args.single):
            await rt.enqueue(noop, Item(i=-i - 1))
        result["enqueue_single_jobs_per_s"] = round(args.single / (time.perf_counter() - t0), 1)
        await rt.run_worker(args.concurrency, burst=True)

        t0 = time.perf_counter()
        for start in range(0, args.jobs, 1000):
            await rt.enqueue_many(
                noop, [Item(i=i) for i in range(start, min(start + 1000, args.jobs))]
            )
        result["enqueue_bulk_jobs_per_s"] = round(args.jobs / (time.perf_counter() - t0), 1)

        STARTED.clear()
        t0 = time.perf_counter()
        worker = await rt.run_worker(args.concurrency, burst=True)
        elapsed = time.perf_counter() - t0
        assert worker.processed == args.jobs and await rt.store.pending_count() == 0
        assert len(STARTED) == args.jobs
        result["drain_jobs_per_s"] = round(args.jobs / elapsed, 1)

        latencies = []
        async with anyio.create_task_group() as tg:
            w = rt.worker(concurrency=args.concurrency)
            await tg.start(w.run)
            await anyio.sleep(0.2)
            for i in range(args.latency):
                t = time.perf_counter()
                handle = await rt.enqueue(noop, Item(i=10_000_000 + i))
                with anyio.fail_after(10):
                    while handle.id and (10_000_000 + i) not in STARTED:
                        await anyio.sleep(0.0005)
                latencies.append((STARTED[10_000_000 + i] - t) * 1000)
                await anyio.sleep(0.01)
            w.stop()
        result["latency_ms"] = {
            "p50": round(pct(latencies, 50), 3),
            "p90": round(pct(latencies, 90), 3),
            "p99": round(pct(latencies, 99), 3),
            "mean": round(statistics.fmean(latencies), 3),
        }
    return result


async def claim_ms_at(folder: Path, queued: int) -> float:
    """The median time of a claim of 100 jobs with `queued` jobs queued."""
    url = f"sqlite+aiosqlite:///{folder / f'deep-{queued}.db'}"
    async with bj.Runtime(url, jobs=[noop], load_entrypoints=False, artifacts=str(folder)) as rt:
        for start in range(0, queued, 10_000):
            count = min(10_000, queued - start)
            await rt.enqueue_many(noop, [Item(i=i) for i in range(start, start + count)])
        return await claim_ms(rt, "bench.noop")


async def deep(args: argparse.Namespace) -> dict[str, float]:
    folder = Path(tempfile.mkdtemp(prefix="bj-bench-"))
    return {
        "claim_100_ms_at_10000_queued": await claim_ms_at(folder, 10_000),
        f"claim_100_ms_at_{args.deep}_queued": await claim_ms_at(folder, args.deep),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--single", type=int, default=2_000)
    parser.add_argument("--latency", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--deep", type=int, default=0, help="N: claim times at N queued")
    args = parser.parse_args()
    os.environ.setdefault("BRAINS_JOBS_LOG_LEVEL", "warning")
    result = anyio.run(main, args)
    if args.deep:
        result.update(anyio.run(deep, args))
    print(json.dumps(result), file=sys.stdout)
