"""What an enqueue costs on PostgreSQL, single and in bulk, printed as one JSON object.

    python benchmarks/pg_enqueue_call.py [--dsn postgresql://postgres@127.0.0.1/test] [--calls 3000]

Three measures, in a schema of their own (dropped afterwards):

- `call`: `await rt.enqueue(job, input)` called one after another, each awaited: the
  median and 90th percentile time of a call, and the CPU this process spent per call
  (validation, the store's Python, asyncpg, the event loop).
- `bulk`: `await rt.enqueue_many(job, inputs)` of 1,000 inputs, 30 times: the median
  and mean time of a call, the CPU this process spent per job (building the inputs'
  models included), and the full garbage collections that ran meanwhile.
- `statement`: the median time of the plain enqueue statement of one job on a bare
  asyncpg connection, as the store runs it (`full`: the job and its `queued` audit row
  behind the events fence), without the fence, without the audit row, and a bare
  `INSERT ... RETURNING id` for comparison; four rounds of 1,000 each, interleaved.
- `spaced`: one job at a time with 5 ms between calls, as a web application enqueues
  (and as the shared harness measures pick-up), while another connection listens on
  the store's work channel: `rt.enqueue`, the same statement from a bare connection,
  and the bare `INSERT ... RETURNING id` (no audit row), taking turns in rounds of 150.
  The median time and this process's CPU per call: after 5 ms idle, the caches are
  cold and each call's Python costs several times what it costs back to back.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import statistics
import time
import uuid
from typing import Any

import asyncpg
from measures import generic_plan_session, pct
from pg_cost import Noop, cost_noop

import brains_jobs as bj
from brains_jobs.store.postgres import PostgresStore
from brains_jobs.store.postgres import sql_enqueue as statements

# A job's row alone: no audit row, no fence (the table's indexes and trigger still work).
BARE_INSERT = (
    "INSERT INTO {{schema}}.jobs (type, queue, priority, status, input, max_attempts)"
    " VALUES ($1, $2, $3, 'queued', $4::json, $5) RETURNING id"
)


async def calls(url: str, n: int) -> dict[str, float]:
    async with bj.Runtime(url, jobs=[cost_noop], load_entrypoints=False) as rt:
        for i in range(200):  # warm up: connections, prepared statements
            await rt.enqueue(cost_noop, {"i": i})
        took = []
        cpu = time.process_time()
        for i in range(n):
            began = time.perf_counter()
            await rt.enqueue(cost_noop, {"i": i})
            took.append(time.perf_counter() - began)
        cpu = time.process_time() - cpu
    return {
        "p50_ms": round(pct(took, 50) * 1e3, 3),
        "p90_ms": round(pct(took, 90) * 1e3, 3),
        "cpu_us_per_call": round(cpu / n * 1e6, 1),
    }


async def bulk_calls(url: str, rounds: int = 30, size: int = 1000) -> dict[str, Any]:
    """`enqueue_many` of `size` inputs, `rounds` times, each batch's models built just
    before its call (as the shared harness does): the median and mean time of a call,
    this process's CPU per job, and the full (generation 2) garbage collections that ran
    meanwhile, with their time.
    """
    passes: list[float] = []
    began_pass = 0.0

    def on_gc(phase: str, info: dict[str, int]) -> None:
        nonlocal began_pass
        if info["generation"] == 2:
            if phase == "start":
                began_pass = time.perf_counter()
            else:
                passes.append(time.perf_counter() - began_pass)

    async with bj.Runtime(url, jobs=[cost_noop], load_entrypoints=False) as rt:
        for _ in range(3):  # warm up
            await rt.enqueue_many(cost_noop, [Noop(i=i) for i in range(size)])
        took = []
        gc.callbacks.append(on_gc)
        cpu = time.process_time()
        try:
            for _ in range(rounds):
                batch = [Noop(i=i) for i in range(size)]
                began = time.perf_counter()
                await rt.enqueue_many(cost_noop, batch)
                took.append(time.perf_counter() - began)
        finally:
            cpu = time.process_time() - cpu
            gc.callbacks.remove(on_gc)
    return {
        "size": size,
        "p50_ms": round(statistics.median(took) * 1e3, 3),
        "mean_ms": round(statistics.mean(took) * 1e3, 3),
        "cpu_us_per_job": round(cpu / (rounds * size) * 1e6, 2),
        "full_gc_passes": len(passes),
        "full_gc_ms": round(sum(passes) * 1e3, 1),
    }


async def statement_times(url: str, dsn: str, schema: str) -> dict[str, list[float]]:
    store = PostgresStore(url)
    await store.open()
    conn = await generic_plan_session(dsn, schema)
    try:
        plain = statements.ENQUEUE_ONE  # what the store sends for one plain job
        # the statement without its audit CTE, ending as the store's does
        no_audit = plain.split("), ev AS")[0] + ")\n" + plain.rsplit(")\n", 1)[1]
        text = '{"i": 1}'
        args = ("cost_noop", "default", 0, text, 3, None)
        variants: dict[str, tuple[str, tuple[Any, ...]]] = {
            "full": (store._sql_enqueue_plain[False, True], args),
            "no_fence": (store.sql(plain.replace("{{fence}}", "true")), args),
            "no_audit_row": (store.sql(no_audit), args),
            "bare_insert": (store.sql(BARE_INSERT), ("cost_noop", "default", 0, text, 3)),
        }
        medians: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(4):
            for name, (sql, values) in variants.items():
                await conn.execute("TRUNCATE jobs, job_events")
                for _ in range(100):
                    await conn.fetch(sql, *values)
                took = []
                for _ in range(1000):
                    began = time.perf_counter()
                    await conn.fetch(sql, *values)
                    took.append(time.perf_counter() - began)
                medians[name].append(round(statistics.median(took) * 1e3, 3))
        return medians
    finally:
        await conn.close()
        await store.close()


async def spaced_calls(url: str, dsn: str, schema: str, rounds: int = 6) -> dict[str, Any]:
    """`rt.enqueue` and the bare statement, 5 ms apart, taking turns (see the docstring)."""
    async with bj.Runtime(url, jobs=[cost_noop], load_entrypoints=False) as rt:
        listener = await asyncpg.connect(dsn)
        await listener.add_listener(rt.store.work_channel, lambda *_: None)
        conn = await generic_plan_session(dsn, schema)
        statement = await conn.prepare(rt.store._sql_enqueue_plain[False, True])
        insert = await conn.prepare(rt.store.sql(BARE_INSERT))
        took: dict[str, list[float]] = {"runtime": [], "statement": [], "insert": []}
        cpu: dict[str, list[float]] = {arm: [] for arm in took}
        try:
            for _ in range(rounds):
                for arm in took:
                    for i in range(150):
                        await asyncio.sleep(0.005)
                        began, began_cpu = time.perf_counter(), time.thread_time()
                        if arm == "runtime":
                            await rt.enqueue(cost_noop, Noop(i=i))
                        elif arm == "statement":
                            text = Noop(i=i).model_dump_json()
                            await statement.fetchval("cost_noop", "default", 0, text, 3, None)
                        else:
                            text = Noop(i=i).model_dump_json()
                            await insert.fetchval("cost_noop", "default", 0, text, 3)
                        took[arm].append(time.perf_counter() - began)
                        cpu[arm].append(time.thread_time() - began_cpu)
        finally:
            await conn.close()
            await listener.close()
    return {
        arm: {
            "p50_ms": round(statistics.median(took[arm]) * 1e3, 3),
            "cpu_us_p50": round(statistics.median(cpu[arm]) * 1e6, 1),
        }
        for arm in took
    }


async def main(dsn: str, n: int) -> dict[str, Any]:
    schema = f"bj_call_{uuid.uuid4().hex[:8]}"
    url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1) + f"?schema={schema}"
    logging.getLogger("brains_jobs").setLevel(logging.WARNING)
    try:
        call = await calls(url, n)
        bulk = await bulk_calls(url)
        statement = await statement_times(url, dsn, schema)
        spaced = await spaced_calls(url, dsn, schema)
    finally:
        conn = await asyncpg.connect(dsn)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()
    return {
        "store": "postgresql",
        "calls": n,
        "call": call,
        "bulk": bulk,
        "statement_p50_ms": statement,
        "spaced": spaced,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--calls", type=int, default=3000)
    options = parser.parse_args()
    print(json.dumps(asyncio.run(main(options.dsn, options.calls))))
