"""PostgreSQL scaling of brains-jobs, printed as one JSON object.

    python benchmarks/pg_scale.py [--dsn postgresql://postgres@127.0.0.1/test]

- workers:  N no-op jobs drained by 1 worker process, then by 4 (`brains-jobs worker
            --burst`), jobs/s from the first process start until nothing is pending
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
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import anyio
import asyncpg

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
        sys.executable, "-m", "brains_jobs", "worker", "--db", url,
        "--plugin", "tests.support.jobs", "-l", "warning", *args,
    ]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "BRAINS_JOBS_PLUGINS_ALLOW": ""}


def drain(dsn: str, processes: int, n: int) -> float:
    schema = f"bj_scale_{uuid.uuid4().hex[:8]}"
    url = url_for(dsn, schema)
    try:
        anyio.run(enqueue, url, n, jobs.noop, {"a": 1})
        start = time.perf_counter()
        procs = [
            subprocess.Popen(worker_cmd(url, "--burst", "-c", "10"), env=env(), cwd=ROOT)
            for _ in range(processes)
        ]
        for proc in procs:
            proc.wait(600)
        elapsed = time.perf_counter() - start
        assert anyio.run(pending, url) == 0
        return round(n / elapsed, 1)
    finally:
        anyio.run(drop, dsn, schema)


async def claim_ms(dsn: str, queued: int) -> float:
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
            timings = []
            for _ in range(50):
                t = time.perf_counter()
                got = await rt.store.claim(
                    worker_id="bench", queues=None, types=["noop"], limit=100, lease=60
                )
                timings.append((time.perf_counter() - t) * 1000)
                assert len(got) == 100
            return round(statistics.median(timings), 3)
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
    one = drain(args.dsn, 1, args.jobs)
    four = drain(args.dsn, 4, args.jobs)
    small = anyio.run(claim_ms, args.dsn, 10_000)
    big = anyio.run(claim_ms, args.dsn, args.big)
    result = {
        "store": "postgresql",
        "jobs": args.jobs,
        "drain_1_process_jobs_per_s": one,
        "drain_4_processes_jobs_per_s": four,
        "scaling_4_over_1": round(four / one, 2),
        "claim_100_ms_at_10k_queued": small,
        f"claim_100_ms_at_{args.big}_queued": big,
        "claim_ratio": round(big / small, 2),
        "worker_c200_peak_rss_mb": peak_rss_mb(args.dsn),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
