"""A short run of `benchmarks/pg_audit_floor.py`: every step of the ladder drains its
jobs on a real PostgreSQL, each duty adds its writes, and no schema is left behind.
"""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest

from tests.conftest import PG_DSN, require_postgres
from tests.support.benchmarks import run_benchmark


async def _ladder_schemas() -> int:
    conn = await asyncpg.connect(PG_DSN)
    try:
        query = "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'bj\\_ladder\\_%'"
        return int(await conn.fetchval(query))
    finally:
        await conn.close()


@pytest.mark.slow
@pytest.mark.serial  # it reads the server's WAL position, which every other test moves too
def test_pg_audit_floor_drains_every_step_and_counts_each_duty() -> None:
    require_postgres()
    before = asyncio.run(_ladder_schemas())
    printed = run_benchmark(
        "pg_audit_floor.py",
        *("--dsn", PG_DSN, "--jobs", "600", "--batch", "100", "--rounds", "1"),
        timeout=180,
    )
    result = json.loads(printed)
    median = result["median"]
    assert list(median) == [
        "floor",
        "audit",
        "lease_index",
        "prune_index",
        "store_table",
        "store",
    ]
    assert all(step["drain_jobs_per_s"] > 0 for step in median.values())
    wal = {name: step["wal_bytes_per_job"] for name, step in median.items()}
    # the audit rows write about 570 bytes a job more, far above what a checkpoint's
    # page images add to a short run; the store's wider rows more again
    assert wal["floor"] + 300 < wal["audit"] < wal["store"], wal
    assert asyncio.run(_ladder_schemas()) == before
