"""What one job costs on PostgreSQL, measured in one process, printed as one JSON object.

    python benchmarks/pg_cost.py [--dsn postgresql://postgres@127.0.0.1/test] [--jobs 50000]

N no-op jobs are enqueued in a schema of their own and analysed; then a worker
(concurrency 10, the defaults otherwise) drains them in this process, after
`bj.tune_gc_for_worker()` as `brains-jobs worker` does (`gc.freeze()` with code older
than it). Printed: jobs/s, the worker's CPU per job
(`getrusage` of this process over the drain), PostgreSQL's CPU per job (its processes'
CPU time from `/proc`: run this on the database's machine), the WAL written per job,
and, where the `pg_walinspect` extension can be created, the WAL by record type. The
schema (and the extension, when this created it) is dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import resource
import time
import uuid
from typing import Any

import asyncpg
from pg_cpu import postgres_cpu
from pydantic import BaseModel

import brains_jobs as bj


class Noop(BaseModel):
    i: int


class Done(BaseModel):
    pass


@bj.job("cost_noop")
async def cost_noop(ctx: bj.JobContext, inp: Noop) -> Done:
    return Done()


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def wal_by_record(conn: asyncpg.Connection, start: Any, end: Any, n: int) -> Any:
    had = await conn.fetchval("SELECT count(*) FROM pg_extension WHERE extname = 'pg_walinspect'")
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
        rows = await conn.fetch(
            "SELECT * FROM pg_get_wal_stats($1, $2, true)"
            " WHERE combined_size > 0 ORDER BY combined_size DESC LIMIT 8",
            start,
            end,
        )
    except asyncpg.PostgresError as exc:
        return f"pg_walinspect unavailable: {exc}"
    finally:
        if not had:  # leave the database as it was
            await conn.execute("DROP EXTENSION IF EXISTS pg_walinspect")
    return {
        r["resource_manager/record_type"]: {
            "records_per_job": round(r["count"] / n, 2),
            "bytes_per_job": round(r["combined_size"] / n, 1),
        }
        for r in rows
    }


async def main(dsn: str, n: int) -> dict[str, Any]:
    schema = f"bj_cost_{uuid.uuid4().hex[:8]}"
    url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1) + f"?schema={schema}"
    logging.getLogger("brains_jobs").setLevel(logging.WARNING)
    conn = await asyncpg.connect(dsn)
    try:
        async with bj.Runtime(url, jobs=[cost_noop], load_entrypoints=False) as rt:
            for start in range(0, n, 10_000):
                inputs = [Noop(i=i) for i in range(start, min(n, start + 10_000))]
                await rt.enqueue_many(cost_noop, inputs)
        await conn.execute(f'ANALYZE "{schema}".jobs, "{schema}".job_events')
        async with bj.Runtime(url, jobs=[cost_noop], load_entrypoints=False) as rt:
            worker = rt.worker(concurrency=10)

            async def stop_when_done() -> None:
                query = (
                    f"SELECT count(*) FROM \"{schema}\".jobs WHERE status IN ('queued', 'running')"
                )
                while await conn.fetchval(query):
                    await asyncio.sleep(0.2)
                worker.stop()

            getattr(bj, "tune_gc_for_worker", gc.freeze)()
            wal_start = await conn.fetchval("SELECT pg_current_wal_lsn()")
            pg_start, cpu_start, t0 = postgres_cpu(), own_cpu(), time.perf_counter()
            await asyncio.gather(worker.run(), stop_when_done())
            elapsed = time.perf_counter() - t0
            cpu, pg_end = own_cpu() - cpu_start, postgres_cpu()
            wal_end = await conn.fetchval("SELECT pg_current_wal_lsn()")
        wal = float(await conn.fetchval("SELECT pg_wal_lsn_diff($1, $2)", wal_end, wal_start))
        return {
            "store": "postgresql",
            "jobs": n,
            "drain_jobs_per_s": round(n / elapsed, 1),
            "worker_us_per_job": round(cpu / n * 1e6, 1),
            "postgres_us_per_job": None
            if pg_start is None or pg_end is None
            else round((pg_end - pg_start) / n * 1e6, 1),
            "wal_bytes_per_job": round(wal / n, 1),
            "wal_by_record": await wal_by_record(conn, wal_start, wal_end, n),
        }
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--jobs", type=int, default=50_000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.dsn, args.jobs))))
