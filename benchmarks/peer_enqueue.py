"""Bulk enqueue beside the peers, many rounds, each in a fresh process; one JSON object.

Run it from the peer harness's folder with its virtualenv, as the harness runs drivers:

    cd bench-peers
    BENCH_DRIVER_PATH=/path/to/brains_jobs/benchmarks \\
        $PEERS_VENV/bin/python /path/to/brains_jobs/benchmarks/peer_enqueue.py \\
        [--peers "brains_jobs pgqueuer"] [--rounds 11] [--n 10000] [--batch 1000]

Each round enqueues N jobs with each driver as the harness's drain scenario does: in a
fresh process, into a schema just reset, with the driver's `enqueue_many` on chunks of
`--batch`, the clock running over the calls only, and the garbage collector left as it
is. The drivers take turns. The harness measures this once per run; a 10,000-job
enqueue lasts about a tenth of a second, so one full garbage collection or a busy moment
of the machine moves it by a third. Here the median of many rounds compares them.

One more arm, `statement`, sends brains-jobs's own plain enqueue statement from a bare
asyncpg connection, each input model dumped by `model_dump_json()`: what any client of
that statement pays at least (the models built, dumped and sent, the statement run).

Printed: jobs/s per round and their median for each arm, each median over the median
of the last peer named (PgQueuer's by default), and the full garbage collections that
ran in each arm's rounds, with their time.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import subprocess
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
            self.sql = rt.store._sql_enqueue_plain[False, False]  # type: ignore[attr-defined]

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


class FullCollections:
    """The full (generation 2) garbage collections that run while it is entered, and
    the time they took.
    """

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0
        self._began = 0.0

    def _observe(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] == 2:
            if phase == "start":
                self._began = time.perf_counter()
            else:
                self.count += 1
                self.seconds += time.perf_counter() - self._began

    def __enter__(self) -> FullCollections:
        gc.callbacks.append(self._observe)
        return self

    def __exit__(self, *_: object) -> None:
        gc.callbacks.remove(self._observe)


async def one_round(arm: str, n: int, batch: int) -> dict[str, Any]:
    """Jobs/s of one enqueue of `n` jobs by `arm`, as the harness's drain scenario times
    it, and the full garbage collections that ran meanwhile.
    """
    driver = Statement() if arm == "statement" else harness.load_driver(arm)(10)
    await driver.reset()
    await driver.open_client()
    try:
        items = [(i, 0.0) for i in range(n)]
        with FullCollections() as collections:
            began = time.monotonic()
            for k in range(0, n, batch):
                await driver.enqueue_many(items[k : k + batch])
            took = time.monotonic() - began
    finally:
        await driver.close_client()
    return {"jobs_per_s": n / took, "full_gc": collections.count, "gc_s": collections.seconds}


def in_a_process(arm: str, n: int, batch: int) -> dict[str, Any]:
    """`one_round` in a process of its own, as the harness runs each driver."""
    done = subprocess.run(
        [sys.executable, __file__, "--one", arm, "--n", str(n), "--batch", str(batch)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def run(peers: list[str], rounds: int, n: int, batch: int) -> dict[str, Any]:
    arms = [*peers, "statement"]
    rates: dict[str, list[float]] = {arm: [] for arm in arms}
    passes = dict.fromkeys(arms, 0)
    pass_seconds = dict.fromkeys(arms, 0.0)
    try:
        for _ in range(rounds):
            for arm in arms:
                result = in_a_process(arm, n, batch)
                rates[arm].append(result["jobs_per_s"])
                passes[arm] += result["full_gc"]
                pass_seconds[arm] += result["gc_s"]
    finally:
        asyncio.run(cleanup(peers))
    medians = {arm: statistics.median(r) for arm, r in rates.items()}
    base = peers[-1]
    return {
        "n": n,
        "batch": batch,
        "rounds": rounds,
        "jobs_per_s": {arm: [round(x) for x in r] for arm, r in rates.items()},
        "median_jobs_per_s": {arm: round(m) for arm, m in medians.items()},
        f"over_{base}": {arm: round(m / medians[base], 2) for arm, m in medians.items()},
        "full_gc_passes": passes,
        "full_gc_ms": {arm: round(s * 1e3, 1) for arm, s in pass_seconds.items()},
    }


async def cleanup(peers: list[str]) -> None:
    for peer in peers:
        await harness.load_driver(peer)(10).cleanup()
    await benchlib.pg_drop_schema(peer_brains_jobs.SCHEMA)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--peers", default="brains_jobs pgqueuer")
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # one round of one arm
    args = parser.parse_args()
    if args.one:
        print(json.dumps(asyncio.run(one_round(args.one, args.n, args.batch))))
        return
    print(json.dumps(run(args.peers.split(), args.rounds, args.n, args.batch)))


if __name__ == "__main__":
    main()
