"""PostgreSQL scaling of brains-jobs, printed as one JSON object.

    python benchmarks/pg_scale.py [--dsn postgresql://postgres@127.0.0.1/test]

- workers:  N no-op jobs drained by 1, 2 and 4 worker processes (`brains-jobs worker
            --burst`), jobs/s from the first process start until nothing is pending,
            with the CPU each job cost the workers (their start-up, measured apart on
            an empty queue, taken out) and PostgreSQL (its processes' CPU time from
            /proc over the drain: run this on the database's machine)
- flooded:  one worker process drains N jobs while an enqueuer adds N more as fast as
            it can (jobs/s over the 2N, beside the plain drain of 1 process)
- claim:    milliseconds per claim of 100 jobs (median of 50 claims) with 10,000 and with
            1,000,000 jobs queued
- rss:      peak resident memory of one worker process at concurrency 200 running 5,000
            jobs that each sleep 50 ms

Each measurement uses a schema of its own, dropped afterwards. Default configuration:
audit trail, leases, heartbeats and events on.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path

import anyio
import asyncpg
from measures import claim_ms
from pg_cpu import postgres_cpu

import brains_jobs as bj

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support import jobs  # noqa: E402  (the test job types, importable by workers)


def url_for(dsn: str, schema: str) -> str:
    return dsn.replace("postgresql://", "postgresql+asyncpg://", 1) + f"?schema={schema}"


async def drop(dsn: str, schema: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def enqueue(url: str, n: int, definition: bj.JobDefinition, inp: dict) -> None:
    async with bj.Runtime(url, jobs=jobs.ALL, load_entrypoints=False) as rt:
        for start in range(0, n, 10_000):
            await rt.enqueue_many(definition, [inp] * min(10_000, n - start))


async def pending(url: str) -> int:
    async with bj.Runtime(url, load_entrypoints=False, create_schema=False) as rt:
        return await rt.store.pending_count()


def worker_cmd(url: str, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "brains_jobs",
        "worker",
        "--db",
        url,
        "--plugin",
        "tests.support.jobs",
        "-l",
        "warning",
        *args,
    ]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "BRAINS_JOBS_PLUGINS_ALLOW": ""}


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_workers(url: str, processes: int) -> None:
    procs = [
        subprocess.Popen(worker_cmd(url, "--burst", "-c", "10"), env=env(), cwd=ROOT)
        for _ in range(processes)
    ]
    for proc in procs:
        proc.wait(600)


def startup_cpu(dsn: str) -> float:
    """CPU seconds of one worker process that starts, finds nothing and stops."""
    schema = f"bj_scale_{uuid.uuid4().hex[:8]}"
    url = url_for(dsn, schema)
    try:
        anyio.run(enqueue, url, 0, jobs.noop, {"a": 1})  # the schema, no jobs
        before = children_cpu()
        run_workers(url, 1)
        return children_cpu() - before
    finally:
        anyio.run(drop, dsn, schema)


def drain(dsn: str, processes: int, n: int, startup: float) -> dict[str, float | None]:
    schema = f"bj_scale_{uuid.uuid4().hex[:8]}"
    url = url_for(dsn, schema)
    try:
        anyio.run(enqueue, url, n, jobs.noop, {"a": 1})
        pg_before, cpu_before = postgres_cpu(), children_cpu()
        start = time.perf_counter()
        run_workers(url, processes)
        elapsed = time.perf_counter() - start
        pg_after, cpu_after = postgres_cpu(), children_cpu()
        assert anyio.run(pending, url) == 0
        worker = cpu_after - cpu_before - processes * startup
        return {
            "jobs_per_s": round(n / elapsed, 1),
            "worker_us_per_job": round(worker / n * 1e6, 1),
            "postgres_us_per_job": None
            if pg_before is None or pg_after is None
            else round((pg_after - pg_before) / n * 1e6, 1),
        }
    finally:
        anyio.run(drop, dsn, schema)


def drain_flooded(dsn: str, n: int) -> float:
    """Jobs/s of one worker process that drains `n` queued jobs while this process
    enqueues `n` more, in chunks of 1,000 as fast as it can: 2n jobs over the time from
    the worker's start until nothing is pending.
    """
    schema = f"bj_scale_{uuid.uuid4().hex[:8]}"
    url = url_for(dsn, schema)

    async def flood() -> None:
        async with bj.Runtime(url, jobs=jobs.ALL, load_entrypoints=False) as rt:
            for start in range(0, n, 1_000):
                await rt.enqueue_many(jobs.noop, [{"a": 1}] * min(1_000, n - start))

    try:
        anyio.run(enqueue, url, n, jobs.noop, {"a": 1})
        start = time.perf_counter()
        # Not --burst: it would stop whenever it catches up with the flood.
        proc = subprocess.Popen(worker_cmd(url, "-c", "10"), env=env(), cwd=ROOT)
        try:
            anyio.run(flood)
            while anyio.run(pending, url):
                time.sleep(0.01)
            elapsed = time.perf_counter() - start
        finally:
            proc.terminate()
            proc.wait(60)
        return round(2 * n / elapsed, 1)
    finally:
        anyio.run(drop, dsn, schema)


async def claim_ms_at(dsn: str, queued: int) -> float:
    schema = f"bj_scale_{uuid.uuid4().hex[:8]}"
    url = url_for(dsn, schema)
    try:
        await enqueue(url, queued, jobs.noop, {"a": 1})
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f'ANALYZE "{schema}".jobs')
        finally:
            await conn.close()
        async with bj.Runtime(url, jobs=jobs.ALL, load_entrypoints=False) as rt:
            return await claim_ms(rt, "noop")
    finally:
        await drop(dsn, schema)


def peak_rss_mb(dsn: str) -> float:
    schema = f"bj_scale_{uuid.uuid4().hex[:8]}"
    url = url_for(dsn, schema)
    try:
        anyio.run(enqueue, url, 5000, jobs.sleep, {"seconds": 0.05, "ledger": False})
        proc = subprocess.Popen(worker_cmd(url, "--burst", "-c", "200"), env=env(), cwd=ROOT)
        peak = 0
        while proc.poll() is None:
            try:
                for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
            except FileNotFoundError:
                break
            time.sleep(0.1)
        proc.wait(600)
        return round(peak / 1024, 1)
    finally:
        anyio.run(drop, dsn, schema)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--big", type=int, default=1_000_000)
    args = parser.parse_args()
    startup = startup_cpu(args.dsn)
    drains = {p: drain(args.dsn, p, args.jobs, startup) for p in (1, 2, 4)}
    flooded = drain_flooded(args.dsn, args.jobs)
    small = anyio.run(claim_ms_at, args.dsn, 10_000)
    big = anyio.run(claim_ms_at, args.dsn, args.big)
    result = {
        "store": "postgresql",
        "jobs": args.jobs,
        "worker_startup_cpu_s": round(startup, 3),
        **{f"drain_{p}_processes": d for p, d in drains.items()},
        "scaling_4_over_1": round(
            float(drains[4]["jobs_per_s"] or 0) / float(drains[1]["jobs_per_s"] or 1), 2
        ),
        "drain_1_process_while_flooded_jobs_per_s": flooded,
        "flooded_over_plain": round(flooded / float(drains[1]["jobs_per_s"] or 1), 2),
        "claim_100_ms_at_10k_queued": small,
        f"claim_100_ms_at_{args.big}_queued": big,
        "claim_ratio": round(big / small, 2),
        "worker_c200_peak_rss_mb": peak_rss_mb(args.dsn),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
