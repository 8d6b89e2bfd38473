"""What limits and dependencies cost, beside the plain drain, printed as one JSON object.

    python benchmarks/features.py [--db URL] [--jobs 10000] [--concurrency 10]
                                  [--group 10000] [--chain 1000]

On one database (default: a new SQLite file; `--db postgresql://...` for PostgreSQL,
where a schema of its own is created and dropped), one in-process worker:

- drain_plain_jobs_per_s:     N no-op jobs without limits
- drain_limited_jobs_per_s:   N no-op jobs sharing one `bj.Concurrency` key whose limit
                              equals the worker's concurrency
- limited_over_plain:         their ratio
- group:                      a group of G no-op members with a callback: seconds from the
                              start of the drain until the callback succeeded, and the
                              extra time per member over a plain drain of G jobs (what
                              resolving its dependent costs)
- chain:                      a chain of C no-op steps: seconds from enqueue to the last
                              step's success, and milliseconds per step (claim, run,
                              finish and resolution of the next)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
from pydantic import BaseModel

import brains_jobs as bj


class Item(BaseModel):
    i: int = 0


class Done(BaseModel):
    i: int = 0


@bj.job("bench.noop", max_attempts=1)
async def noop(ctx: bj.JobContext, item: Item) -> Done:
    return Done(i=item.i)


@bj.job("bench.limited", max_attempts=1, limits=[bj.Concurrency("bench", 10)])
async def limited(ctx: bj.JobContext, item: Item) -> Done:
    return Done(i=item.i)


@bj.job("bench.step", max_attempts=1)
async def step(ctx: bj.JobContext, item: Done) -> Done:
    return Done(i=item.i + 1)


@bj.job("bench.summary", max_attempts=1)
async def summary(ctx: bj.JobContext, results: bj.GroupResults[Done]) -> Done:
    return Done(i=len(results.succeeded()))


async def drain(rt: bj.Runtime, concurrency: int) -> float:
    t0 = time.perf_counter()
    await rt.run_worker(concurrency, burst=True, maintenance=False)
    return time.perf_counter() - t0


async def enqueue_all(rt: bj.Runtime, job: bj.JobDefinition[Any, Any], n: int) -> None:
    for start in range(0, n, 1000):
        await rt.enqueue_many(job, [Item(i=i) for i in range(start, min(start + 1000, n))])


async def measure(url: str, args: argparse.Namespace) -> dict[str, object]:
    result: dict[str, object] = {}
    jobs = [noop, limited, step, summary]
    async with bj.Runtime(url, jobs=jobs, load_entrypoints=False) as rt:
        await rt.set_limit("bench", concurrency=args.concurrency)
        await enqueue_all(rt, noop, args.jobs)
        plain = args.jobs / await drain(rt, args.concurrency)
        await enqueue_all(rt, limited, args.jobs)
        capped = args.jobs / await drain(rt, args.concurrency)
        result["drain_plain_jobs_per_s"] = round(plain, 1)
        result["drain_limited_jobs_per_s"] = round(capped, 1)
        result["limited_over_plain"] = round(capped / plain, 3)

        await enqueue_all(rt, noop, args.group)
        plain_group = await drain(rt, args.concurrency)
        group = await rt.group([noop.bind(Item(i=i)) for i in range(args.group)], then=summary)
        grouped = await drain(rt, args.concurrency)
        done = await rt.get(group.callback.id) if group.callback is not None else None
        assert done is not None and done.output == {"i": args.group}, done
        result["group"] = {
            "members": args.group,
            "seconds": round(grouped, 3),
            "plain_seconds": round(plain_group, 3),
            "extra_us_per_member": round((grouped - plain_group) / args.group * 1e6, 1),
        }

        t0 = time.perf_counter()
        flow = await rt.chain(step.bind(Done(i=0)), *([step] * (args.chain - 1)))
        async with anyio.create_task_group() as tg:
            worker = rt.worker(concurrency=args.concurrency)
            await tg.start(worker.run)
            last = await flow.result(timeout=600)
            chained = time.perf_counter() - t0
            worker.stop()
        assert last.i == args.chain, last
        result["chain"] = {
            "steps": args.chain,
            "seconds": round(chained, 3),
            "ms_per_step": round(chained / args.chain * 1000, 3),
        }
    return result


async def main(args: argparse.Namespace) -> dict[str, object]:
    result: dict[str, object] = {
        "python": platform.python_version(),
        "jobs": args.jobs,
        "concurrency": args.concurrency,
    }
    if args.db and args.db.startswith("postgres"):
        import asyncpg  # type: ignore[import-untyped]

        schema = f"bj_bench_{uuid.uuid4().hex[:8]}"
        base = args.db.replace("postgresql+asyncpg://", "postgresql://")
        separator = "&" if "?" in args.db else "?"
        result["store"] = "postgresql"
        try:
            result.update(await measure(f"{args.db}{separator}schema={schema}", args))
        finally:
            conn = await asyncpg.connect(base.split("?")[0])
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await conn.close()
    else:
        folder = Path(tempfile.mkdtemp(prefix="bj-features-"))
        result["store"] = "sqlite"
        result.update(await measure(args.db or f"sqlite+aiosqlite:///{folder / 'b.db'}", args))
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", default=None, help="A database URL (default: SQLite).")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--group", type=int, default=10_000)
    parser.add_argument("--chain", type=int, default=1_000)
    args = parser.parse_args()
    os.environ.setdefault("BRAINS_JOBS_LOG_LEVEL", "warning")
    print(json.dumps(anyio.run(main, args)), file=sys.stdout)
