"""Measurements the benchmark scripts share: percentiles, the time of a claim, and a
session that plans statements as the PostgreSQL store's connections do."""

from __future__ import annotations

import statistics
import time

import asyncpg

import brains_jobs as bj


def pct(values: list[float], q: float) -> float:
    """The `q`th percentile of `values`, interpolated between the nearest ranks."""
    values = sorted(values)
    k = (len(values) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def percentiles(values: list[float]) -> dict[str, float]:
    """p50, p90, p99 and the maximum of `values`, rounded to 3 places."""
    return {
        "p50": round(pct(values, 50), 3),
        "p90": round(pct(values, 90), 3),
        "p99": round(pct(values, 99), 3),
        "max": round(max(values), 3),
    }


async def claim_ms(rt: bj.Runtime, job_type: str, *, rounds: int = 50) -> float:
    """The median time, in ms, of `rounds` claims of 100 queued jobs of `job_type`."""
    timings = []
    for _ in range(rounds):
        t = time.perf_counter()
        got = await rt.store.claim(
            worker_id="bench", queues=None, types=[job_type], limit=100, lease=60
        )
        timings.append((time.perf_counter() - t) * 1000)
        assert len(got) == 100
    return round(statistics.median(timings), 3)


async def generic_plan_session(dsn: str, schema: str) -> asyncpg.Connection:
    """A connection to `schema` that plans prepared statements generically, as the
    PostgreSQL store's own connections do.
    """
    return await asyncpg.connect(
        dsn,
        server_settings={"search_path": f'"{schema}"', "plan_cache_mode": "force_generic_plan"},
    )
