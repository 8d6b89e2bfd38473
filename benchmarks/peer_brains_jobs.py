"""brains_jobs driver for the peer benchmark in bench-peers (see benchmarks/README.md).

Run it from the harness folder with ``BENCH_DRIVER_PATH=<this folder>``. It uses
brains-jobs's default configuration: the PostgreSQL store with its audit trail
(job_events rows for every status change), leases with heartbeats, the event bus
and LISTEN/NOTIFY wake-up, and the worker's defaults apart from `concurrency`.

Bulk enqueue: ``Runtime.enqueue_many(bench_noop, inputs)`` (every input validated by
pydantic, one INSERT ... SELECT FROM unnest(...) statement per chunk).
Single:       ``Runtime.enqueue(bench_noop, input)``.
Worker:       ``Runtime.run_worker(concurrency=C)``; stopped with ``Worker.stop()``.
"""

from __future__ import annotations

import contextlib
import logging
import os
from urllib.parse import quote

import anyio
import asyncpg
import benchlib
from pydantic import BaseModel

import brains_jobs as bj

SCHEMA = "peer_brains_jobs"
PREFETCH = os.environ.get("BENCH_BJ_PREFETCH")  # None: the worker's default


def _url() -> str:
    dsn = benchlib.PG_DSN
    sep = "&" if "?" in dsn else "?"
    return dsn.replace("postgresql://", "postgresql+asyncpg://", 1) + f"{sep}schema={quote(SCHEMA)}"


class BenchInput(BaseModel):
    i: int
    t: float


class BenchOutput(BaseModel):
    pass


@bj.job("bench_noop")
async def bench_noop(ctx: bj.JobContext, inp: BenchInput) -> BenchOutput:
    benchlib.job_started(inp.i)
    return BenchOutput()


def _runtime() -> bj.Runtime:
    logging.getLogger("brains_jobs").setLevel(logging.WARNING)
    return bj.Runtime(_url(), jobs=[bench_noop], load_entrypoints=False)


class Driver(benchlib.PeerDriver):
    name = "brains_jobs"
    dist = "brains-jobs"
    backend = "postgresql"

    def config(self):
        return {
            "concurrency": f"run_worker(concurrency={self.concurrency}"
            + (f", prefetch={PREFETCH})" if PREFETCH else ") (prefetch default)"),
            "enqueue_api": "Runtime.enqueue_many(job, inputs) (bulk, one INSERT ... unnest) / "
            "Runtime.enqueue(job, input) (single)",
            "wakeup": "LISTEN/NOTIFY (work: trigger in the enqueue; events: after commit) "
            "on a dedicated connection + 1 s poll",
            "audit": "job_events row per status change (CTE in the same statement)",
            "schema": SCHEMA,
        }

    # ---- enqueuing process ----
    async def reset(self):
        await benchlib.pg_recreate_schema(SCHEMA)
        async with _runtime():  # open() applies the migrations
            pass

    async def open_client(self):
        self._rt = _runtime()
        await self._rt.__aenter__()

    async def close_client(self):
        await self._rt.__aexit__(None, None, None)

    async def enqueue_many(self, items):
        await self._rt.enqueue_many(bench_noop, [BenchInput(i=i, t=t) for i, t in items])

    async def enqueue_one(self, i, t):
        await self._rt.enqueue(bench_noop, BenchInput(i=i, t=t))

    async def before_worker(self):
        await benchlib.pg_analyze_schema(SCHEMA)

    async def cleanup(self):
        await benchlib.pg_drop_schema(SCHEMA)

    # ---- worker process ----
    async def worker_setup(self):
        self._rt = _runtime()
        await self._rt.__aenter__()
        options = {"concurrency": self.concurrency}
        if PREFETCH:
            options["prefetch"] = int(PREFETCH)
        self._worker = self._rt.worker(**options)
        self._probe = await asyncpg.connect(benchlib.PG_DSN)
        bj.tune_gc_for_worker()  # as `brains-jobs worker` does once it has started

    async def worker_run(self):
        await self._worker.run()

    async def worker_stop(self):
        self._worker.stop()

    async def pending(self):
        return int(
            await self._probe.fetchval(
                f"SELECT count(*) FROM {SCHEMA}.jobs WHERE status IN ('queued', 'running')"
            )
        )

    async def worker_teardown(self):
        with contextlib.suppress(Exception):
            await self._probe.close()
        with contextlib.suppress(Exception), anyio.move_on_after(10):
            await self._rt.__aexit__(None, None, None)
