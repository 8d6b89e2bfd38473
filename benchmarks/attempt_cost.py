"""What one attempt costs the worker in Python, without a store, printed as one JSON object.

    python benchmarks/attempt_cost.py [--jobs 1000] [--repeats 15]

The worker's own part of a job, apart from claiming and writing results: the `Held`
entry a claim makes, then the attempt (the context, the input validated from its JSON,
`pg_cost.py`'s no-op handler awaited, its output dumped, the outcome, the run-time
histogram and the log-level check). The same `jobs` claimed jobs are run `repeats` times
on the event loop, one after another, after `tune_gc_for_worker()`; printed is the best
pass's CPU (`time.process_time`) per job, the steadiest figure of a noisy machine.
Nothing is written anywhere: the attempt's store is never called for a job that enqueues
nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time
from typing import Any

from pg_cost import cost_noop

import brains_jobs as bj
from brains_jobs.enqueueing import Enqueuer
from brains_jobs.registry import Registry
from brains_jobs.store.records import ClaimedJob
from brains_jobs.worker.attempt import AttemptRunner, Held


async def best_pass(jobs: int, repeats: int) -> float:
    registry = Registry()
    registry.add(cost_noop)
    runner = AttemptRunner(
        worker_id="bench",
        store=None,  # never called: no follow-up jobs
        enqueuer=Enqueuer(registry, max_payload=2**20),
        source=None,
        artifacts=None,
        report=lambda event: None,
        overrun=lambda entry: False,
    )
    claimed = [
        ClaimedJob(i, "cost_noop", "default", f'{{"i":{i}}}', 1, 3, "token") for i in range(jobs)
    ]
    getattr(bj, "tune_gc_for_worker", lambda: None)()
    best = float("inf")
    for _ in range(repeats):
        began = time.process_time()
        for job in claimed:
            outcome = await runner.run(Held(job), cost_noop)
            assert outcome.output == "{}", outcome
        best = min(best, (time.process_time() - began) / jobs)
    return best


def main() -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=15)
    options = parser.parse_args()
    logging.getLogger("brains_jobs").setLevel(logging.WARNING)
    best = asyncio.run(best_pass(options.jobs, options.repeats))
    return {
        "jobs": options.jobs,
        "repeats": options.repeats,
        "cpu_us_per_attempt": round(best * 1e6, 3),
    }


if __name__ == "__main__":
    print(json.dumps(main()))
