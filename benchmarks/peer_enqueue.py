"""Bulk enqueue beside the peers, many rounds in one process, printed as one JSON object.

Run it from the peer harness's folder with its virtualenv, as the harness runs drivers:

    cd bench-peers
    BENCH_DRIVER_PATH=/path/to/brains_jobs/benchmarks \\
        $PEERS_VENV/bin/python /path/to/brains_jobs/benchmarks/peer_enqueue.py \\
        [--peers "brains_jobs pgqueuer"] [--rounds 11] [--n 10000] [--batch 1000]

Each round enqueues N jobs with each driver as the harness's drain scenario does (the
driver's `enqueue_many` on chunks of `--batch`, into a schema it has just reset, the
clock running over the calls only), the drivers taking turns. The harness measures this
once per run, in a fresh process; a 10,000-job enqueue lasts about a tenth of a second,
so one garbage collection or a busy moment of the machine moves it by a third. Here the
median of many rounds compares the drivers.

One more arm, `statement`, sends brains-jobs's own plain enqueue statement from a bare
asyncpg connection, each input model dumped by `model_dump_json()`: what any client of
that statement pays at least (the models built, dumped and sent, the statement run).

Printed: jobs/s per round and their median for each arm, and each median over the
median of the last peer named (PgQueuer's by default).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(Path.cwd()), str(HERE)]

import asyncpg  # noqa: E402
import benchlib  # noqa: E402  (the harness's, from the folder this runs in)
import harness  # noqa: E402
import peer_brains_jobs  # noqa: E402


class Statement:
    """brains-jobs's plain enqueue statement from a bare connection (see the docstring)."""

    async def reset(self) -> None:
        await benchlib.pg_recreate_schema(peer_brains_jobs.SCHEMA)
        async with peer_brains_jobs._runtime() as rt:  # the schema, and the statement
            self.sql = rt.store._sql_enqueue_plain[False]  # type: ignore[attr-defined]

    async def open_client(self) -> None:
        self.conn = await asyncpg.connect(
            benchlib.PG_DSN, server_settings={"plan_cache_mode": "force_generic_plan"}
        )

    async def close_client(self) -> None:
        await self.conn.close()

    async def enqueue_many(self, items: list[tuple[int, float]]) -> None:
        models = [peer_brains_jobs.BenchInput(i=i, t=t) for i, t in items]
        inputs = "\x1f".join([m.model_dump_json() for m in models])
        await self.conn.fetch(self.sql, "bench_noop", "default", 0, inputs, 3, None)


async def one_round(driver: Any, n: int, batch: int) -> float:
    """Jobs/s of one enqueue of `n` jobs, as the harness's drain scenario times it."""
    await driver.reset()
    await driver.open_client()
    try:
        items = [(i, 0.0) for i in range(n)]
        gc.collect()  # every arm starts from the same heap
        began = time.monotonic()
        for k in range(0, n, batch):
            await driver.enqueue_many(items[k : k + batch])
        return n / (time.monotonic() - began)
    finally:
        await driver.close_client()


async def run(peers: list[str], rounds: int, n: int, batch: int) -> dict[str, Any]:
    arms: dict[str, Any] = {peer: harness.load_driver(peer)(10) for peer in peers}
    arms["statement"] = Statement()
    rates: dict[str, list[float]] = {name: [] for name in arms}
    try:
        for _ in range(rounds):
            for name, driver in arms.items():
                rates[name].append(await one_round(driver, n, batch))
    finally:
        for driver in arms.values():
            if hasattr(driver, "cleanup"):
                await driver.cleanup()
        await benchlib.pg_drop_schema(peer_brains_jobs.SCHEMA)
    medians = {name: statistics.median(r) for name, r in rates.items()}
    base = peers[-1]
    return {
        "n": n,
        "batch": batch,
        "rounds": rounds,
        "jobs_per_s": {name: [round(x) for x in r] for name, r in rates.items()},
        "median_jobs_per_s": {name: round(m) for name, m in medians.items()},
        f"over_{base}": {name: round(m / medians[base], 2) for name, m in medians.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--peers", default="brains_jobs pgqueuer")
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    result = asyncio.run(run(args.peers.split(), args.rounds, args.n, args.batch))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
